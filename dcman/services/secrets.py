"""Secrets at rest: Fernet encryption of subcloud passwords, and account password hashes."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import bcrypt
from cryptography.fernet import Fernet, InvalidToken

from dcman.domain.secrets import Sealed, sealed_from_json


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


def hash_password_sync(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12)).decode()


def check_password_sync(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:
        return False


async def hash_password(password: str) -> str:
    """bcrypt takes ~0.2 s of CPU: keep it off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, hash_password_sync, password)


async def check_password(password: str, hashed: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, check_password_sync, password, hashed)
