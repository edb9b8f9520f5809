"""The subcloud credential: HTTP Basic with the user `sysadmin` and the subcloud's sysadmin password.

A site holds each subcloud's sysadmin password (given at `subcloud add`), so it can prove it
is allowed to drive the subcloud without any extra secret. The check is a constant-time
compare of the whole header value against the one precomputed value, which keeps the
simulator's per-request cost to one comparison; a header spelled differently (scheme in
another case, extra spaces) is decoded and compared the slow way.
"""

from __future__ import annotations

import base64
import binascii
import hmac

SYSADMIN = "sysadmin"
REALM_HEADER = b'WWW-Authenticate: Basic realm="dcman-agent"\r\n'


def basic_header(password: str, user: str = SYSADMIN) -> str:
    """The `Authorization` header value a client sends for this password."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class Credential:
    """Checks `Authorization` header values against one sysadmin password."""

    __slots__ = ("_expected", "_password")

    def __init__(self, password: str) -> None:
        self._password = password.encode()
        self._expected = basic_header(password).encode()

    def accepts(self, header: str | None) -> bool:
        """True when the header carries `sysadmin` and the right password."""
        if header is None:
            return False
        raw = header.encode("latin-1", "replace")
        if hmac.compare_digest(raw, self._expected):
            return True
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        return bool(sep) and user == SYSADMIN.encode() and hmac.compare_digest(password, self._password)
