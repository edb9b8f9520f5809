"""Accounts and what each role may do (contract.md, Authentication)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dcman.domain.errors import InvalidInput, PermissionDenied
from dcman.domain.states import Role

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # any length is hashed whole (services/secrets); this bounds the work
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


@dataclass(frozen=True)
class Principal:
    """Who a valid token speaks for."""

    account_id: int
    name: str
    role: Role


def validate_account(name: object, role: object, password: object) -> tuple[str, Role, str]:
    if not isinstance(name, str) or not _ACCOUNT_NAME.fullmatch(name):
        raise InvalidInput("An account name is 1 to 64 letters, digits or the characters _ . @ -.")
    try:
        parsed_role = Role(role)
    except ValueError:
        raise InvalidInput(f"Unknown role {role!r}; it must be admin or reader.") from None
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"The password must be at most {MAX_PASSWORD_LENGTH} characters long.")
    return name, parsed_role, password


def authorize(principal: Principal, mutating: bool) -> None:
    """Readers read; only admins change anything."""
    if mutating and principal.role is not Role.ADMIN:
        raise PermissionDenied(f"Account {principal.name} has the reader role and may only read.")


PEER_USER_AGENT = "dcmanager/"


def is_peer_request(principal: Principal, user_agent: str | None) -> bool:
    """A request from a peer site's sync or migration: the reference's User-Agent, and (dcman's
    addition) an authenticated admin account, so a header alone bypasses no rule."""
    return principal.role is Role.ADMIN and (user_agent or "").startswith(PEER_USER_AGENT)
