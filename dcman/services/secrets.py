"""Secrets at rest: Fernet encryption of subcloud passwords, and account password hashes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from pathlib import Path

import bcrypt
from cryptography.fernet import Fernet, InvalidToken

from dcman.domain.secrets import Sealed, sealed_from_json


class WrongSecretKey(Exception):
    """This process's secret key cannot read the secrets stored in the site's database."""


class SecretBox:
    """Encrypts secrets with the site key: `DCMAN_SECRET_KEY`, else a key file in the data dir.

    Sites sharing one database (scale-out) must share the key, hence the setting.
    """

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def for_site(cls, secret_key: str | None, data_dir: Path) -> "SecretBox":
        if secret_key:
            return cls(secret_key.encode())
        path = data_dir / "secret.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def reads(self, token: str) -> bool:
        """Whether this key decrypts the token (was it encrypted with this site's key?)."""
        try:
            self._fernet.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("a stored secret cannot be decrypted with this site's key") from None

    def seal(self, sealed: Sealed) -> str | None:
        """The secrets `split_secrets` took out of a document, as one Fernet token (None: there were none)."""
        return self.encrypt(json.dumps([[list(path), value] for path, value in sealed], default=str)) if sealed else None

    def unseal(self, token: str | None) -> Sealed:
        return sealed_from_json(json.loads(self.decrypt(token))) if token else []


# bcrypt reads at most 72 bytes (bcrypt 5 refuses more). New hashes are bcrypt of the base64 of
# the password's SHA-256, marked with this prefix, so every password length counts whole;
# hashes without the prefix (older releases) are bcrypt of the password itself and still verify.
PREHASHED = "sha256-b64$"


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode()).digest())


def hash_password_sync(password: str) -> str:
    return PREHASHED + bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds=12)).decode()


def check_password_sync(password: str, hashed: str) -> bool:
    try:
        if hashed.startswith(PREHASHED):
            return bcrypt.checkpw(_prehash(password), hashed.removeprefix(PREHASHED).encode())
        raw = password.encode()
        return len(raw) <= 72 and bcrypt.checkpw(raw, hashed.encode())
    except ValueError:
        return False


async def hash_password(password: str) -> str:
    """bcrypt takes ~0.2 s of CPU: keep it off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, hash_password_sync, password)


async def check_password(password: str, hashed: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, check_password_sync, password, hashed)
