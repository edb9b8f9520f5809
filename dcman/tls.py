"""TLS contexts: the site's server context from its PEM files, and the client contexts that
verify a site (the CLI, the peer client) against a CA file or the system store.

Every failure is a :class:`TlsSetupError` whose message is one line naming the setting, so
that `dcman serve` and the CLI can stop with exactly that line.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path


class TlsSetupError(Exception):
    """A certificate, key or CA file cannot be used; the message is one line naming the setting."""


def read_setting_file(path: str, variable: str) -> str:
    """The text of a file a setting names; TlsSetupError naming the setting when unreadable."""
    try:
        return Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise TlsSetupError(f"{variable}: cannot read {path}: {exc.strerror or exc}") from None


def _reason(exc: ssl.SSLError) -> str:
    """OpenSSL's reason without the C source location Python appends."""
    return exc.reason or re.sub(r"\s*\(_ssl\.c:\d+\)$", "", str(exc)).removeprefix("[SSL] ")


def _no_passphrase() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's passphrase.
    return b""


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """The site's server context (TLS 1.2 or later) from a PEM certificate chain and its key."""
    cert_text = read_setting_file(cert_file, "DCMAN_TLS_CERT_FILE")
    key_text = read_setting_file(key_file, "DCMAN_TLS_KEY_FILE")
    if "-----BEGIN CERTIFICATE-----" not in cert_text:
        raise TlsSetupError(f"DCMAN_TLS_CERT_FILE: {cert_file} holds no PEM certificate")
    if "PRIVATE KEY-----" not in key_text:
        raise TlsSetupError(f"DCMAN_TLS_KEY_FILE: {key_file} holds no PEM private key")
    if "ENCRYPTED" in key_text:
        raise TlsSetupError(f"DCMAN_TLS_KEY_FILE: {key_file} is encrypted; dcman needs the key without a "
                            "passphrase (keep the file 0600)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_passphrase)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsSetupError(f"DCMAN_TLS_KEY_FILE: {key_file} is not the key of the certificate in "
                                f"{cert_file}") from None
        raise TlsSetupError(f"DCMAN_TLS_CERT_FILE: {cert_file} and {key_file} are not a PEM certificate and "
                            f"key that match ({_reason(exc)})") from None
    except OSError as exc:
        raise TlsSetupError(f"DCMAN_TLS_CERT_FILE: cannot load {cert_file}: {exc.strerror or exc}") from None
    return context


def client_context(ca_file: str | None, variable: str) -> ssl.SSLContext:
    """A context that verifies servers against `ca_file` (PEM), or the system store when None."""
    if not ca_file:
        return ssl.create_default_context()
    text = read_setting_file(ca_file, variable)
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise TlsSetupError(f"{variable}: {ca_file} holds no PEM certificate")
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise TlsSetupError(f"{variable}: cannot load the CA certificates in {ca_file}: "
                            f"{_reason(exc) if isinstance(exc, ssl.SSLError) else exc}") from None


def tls_failure(exc: BaseException) -> tuple[bool, str] | None:
    """Whether a connection failed in TLS: (True, why) when the certificate did not verify,
    (False, why) when the handshake failed otherwise (e.g. the server speaks no TLS)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True, str(cause.verify_message or cause.reason or cause)
        if isinstance(cause, ssl.SSLError):
            return False, _reason(cause)
        cause = cause.__cause__ or cause.__context__
    return None
