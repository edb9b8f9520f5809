"""Accounts and tokens: log in, re-scope, validate, revoke; create and delete accounts."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets as pysecrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from dcman.db import accounts as accounts_db
from dcman.db.clock import utcnow
from dcman.domain.accounts import Principal, validate_account
from dcman.domain.errors import Conflict, InvalidInput, NotFound, StateRefused, Throttled, Unauthenticated
from dcman.domain.states import Role
from dcman.domain.throttle import LoginThrottle
from dcman.services.secrets import check_password, hash_password, hash_password_sync

# Compared against when the account does not exist, so that a wrong name costs as much
# time as a wrong password and does not reveal which accounts exist.
@functools.cache
def _dummy_hash() -> str:
    return hash_password_sync("no such account")


@dataclass(frozen=True)
class IssuedToken:
    token: str
    principal: Principal
    issued_at: datetime
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def login(engine: AsyncEngine, name: str, password: str, lifetime_s: int,
                throttle: LoginThrottle | None = None, client: str = "") -> IssuedToken:
    """A token for a right name and password. With a throttle, a client that keeps sending wrong
    passwords for one account waits longer after each (429), right password or not."""
    key = LoginThrottle.key(name, client)
    if throttle is not None and (wait := throttle.wait(key, time.monotonic())):
        raise Throttled(f"Too many wrong passwords for {name[:64]} from this client; try again in {wait} s.", wait)
    async with engine.connect() as conn:
        account = await accounts_db.get_account(conn, name)
    if account is None:
        hashed = await asyncio.get_running_loop().run_in_executor(None, _dummy_hash)
    else:
        hashed = account["password_hash"]
    valid = await check_password(password, hashed)
    if account is None or not valid:
        if throttle is not None:
            throttle.failed(key, time.monotonic())
        raise Unauthenticated("The user name or password is wrong.")
    if throttle is not None:
        throttle.succeeded(key)
    principal = Principal(account["id"], account["name"], Role(account["role"]))
    now = utcnow()
    return await _issue(engine, principal, now, now + timedelta(seconds=lifetime_s))


async def rescope(engine: AsyncEngine, token: str) -> IssuedToken:
    """Keystone's token method: a new token for the same account, expiring with the old one."""
    current = await validate(engine, token)
    return await _issue(engine, current.principal, utcnow(), current.expires_at, parent=token)


async def _issue(engine: AsyncEngine, principal: Principal, issued: datetime, expires: datetime,
                 parent: str | None = None) -> IssuedToken:
    """A new token; one made from another (`parent`) is revoked with it."""
    token = pysecrets.token_urlsafe(32)
    async with engine.begin() as conn:
        await accounts_db.delete_expired_tokens(conn, issued)
        await accounts_db.insert_token(conn, _digest(token), principal.account_id, issued, expires,
                                       _digest(parent) if parent is not None else None)
    return IssuedToken(token, principal, issued, expires)


async def validate(engine: AsyncEngine, token: str | None) -> IssuedToken:
    if not token:
        raise Unauthenticated("Authentication required: send a token in the X-Auth-Token header.")
    async with engine.connect() as conn:
        row = await accounts_db.get_token(conn, _digest(token))
    if row is None or row["expires_at"] <= utcnow():
        raise Unauthenticated("The token is unknown, revoked or expired; request a new one.")
    principal = Principal(row["account_id"], row["name"], Role(row["role"]))
    return IssuedToken(token, principal, row["issued_at"], row["expires_at"])


async def revoke(engine: AsyncEngine, token: str) -> None:
    await validate(engine, token)
    async with engine.begin() as conn:
        await accounts_db.delete_token(conn, _digest(token))


async def create_account(engine: AsyncEngine, name: str, role: str, password: str) -> None:
    name, parsed_role, password = validate_account(name, role, password)
    hashed = await hash_password(password)
    async with engine.begin() as conn:
        if await accounts_db.get_account(conn, name) is not None:
            raise Conflict(f"An account named {name} already exists.")
        await accounts_db.insert_account(conn, name, hashed, parsed_role.value)


async def delete_account(engine: AsyncEngine, name: str) -> None:
    async with engine.begin() as conn:
        account = await accounts_db.get_account(conn, name)
        if account is None:
            raise NotFound(f"No account named {name}.")
        if account["role"] == Role.ADMIN and await accounts_db.count_admins(conn) == 1:
            raise StateRefused(f"Account {name} is the last admin; create another admin before deleting it.")
        await accounts_db.delete_account(conn, account["id"])


async def list_accounts(engine: AsyncEngine) -> list[dict]:
    async with engine.connect() as conn:
        return await accounts_db.list_accounts(conn)


async def ensure_bootstrap_admin(engine: AsyncEngine, name: str, password: str | None) -> str | None:
    """Create the bootstrap administrator at first start. Returns a generated password to print
    once when none was set; an existing account is left as it is."""
    async with engine.connect() as conn:
        if await accounts_db.get_account(conn, name) is not None:
            return None
    generated = None
    if not password:
        generated = password = pysecrets.token_urlsafe(12)
    try:
        await create_account(engine, name, Role.ADMIN.value, password)
    except Conflict:  # another process of the same site won the race
        return None
    except InvalidInput as exc:
        raise InvalidInput(f"DCMAN_ADMIN_USER/DCMAN_ADMIN_PASSWORD: {exc.message}") from None
    return generated
