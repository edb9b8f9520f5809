"""`dcman user …`: manage the site's accounts directly in its database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from dcman.cli.serve import fail
from dcman.config import SettingsError, load_settings
from dcman.db.engine import create_engine
from dcman.domain.errors import DomainError
from dcman.services import accounts
from dcman.site import make_private, prepare_database

T = TypeVar("T")


def _run(action: Callable[..., Awaitable[T]], *args: object) -> T:
    async def go() -> T:
        try:
            settings = load_settings()
        except SettingsError as exc:
            fail(str(exc))
        make_private(settings.data_dir)
        engine = create_engine(settings.effective_database_url)
        try:
            await prepare_database(engine, settings.site_name)
            return await action(engine, *args)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except DomainError as exc:
        fail(exc.message)
        raise  # unreachable


@click.group()
def user() -> None:
    """Accounts that may use this site's API (same DCMAN_* settings as `dcman serve`)."""


@user.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "reader"]), required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create(name: str, role: str, password: str) -> None:
    """Create an account."""
    _run(accounts.create_account, name, role, password)
    click.echo(f"Account {name} created with role {role}.")


@user.command("list")
def list_() -> None:
    """List accounts and their roles."""
    for account in _run(accounts.list_accounts):
        click.echo(f"{account['name']}\t{account['role']}\t{account['created_at']:%Y-%m-%d %H:%M:%S}")


@user.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Delete an account and revoke its tokens."""
    _run(accounts.delete_account, name)
    click.echo(f"Account {name} deleted.")
