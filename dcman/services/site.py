"""Site start-up: a private data directory, schema, identity and the bootstrap administrator."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from dcman.db import site as site_db
from dcman.db.engine import migrate
from dcman.config import Settings
from dcman.services.secrets import SecretBox, WrongSecretKey

KEY_CHECK_TEXT = "dcman: the secret key of this site"


# What dcman keeps in its data directory; nothing else there is touched (the directory may be
# set to a shared place by mistake, and a recursive chmod of it would break the host).
OWN_FILES = ("dcman.sqlite", "dcman.sqlite-wal", "dcman.sqlite-shm", "dcman.sqlite-journal", "secret.key")
OWN_TREES = ("subclouds", "logs")


def make_private(data_dir: Path) -> None:
    """The data directory holds the database, the key and the deploy logs: only the site's user
    may read them. The umask makes every file the process creates 0600 (directories 0700), and
    what an older release left readable is tightened."""
    os.umask(0o077)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    owned = [data_dir, *(data_dir / name for name in OWN_FILES)]
    for tree in OWN_TREES:
        if (data_dir / tree).is_dir() and not (data_dir / tree).is_symlink():
            owned += [data_dir / tree, *(data_dir / tree).rglob("*")]
    for path in owned:
        if not path.exists() or path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != mode & 0o700:
            path.chmod(mode & 0o700)


async def prepare_database(engine: AsyncEngine, site_name: str) -> dict:
    """Migrate the schema and make sure the site has its identity (a UUID kept forever)."""
    await migrate(engine)
    try:
        async with engine.begin() as conn:
            if await site_db.get_site(conn) is None:
                await site_db.insert_site(conn, site_name)
            else:
                await site_db.rename_site(conn, site_name)
    except IntegrityError:  # a second process inserted it first
        pass
    async with engine.connect() as conn:
        site = await site_db.get_site(conn)
    assert site is not None
    return site


async def check_secret_key(engine: AsyncEngine, secrets: SecretBox, settings: Settings) -> None:
    """Refuse a key that cannot read the database's secrets now, rather than fail every deploy
    later. The first process stores a check value encrypted with its key; on a database from
    before the check, only once its key has read a stored secret, if there is one."""
    async with engine.begin() as conn:
        token = await site_db.get_secret_key_check(conn)
        if token is None:
            stored = await site_db.a_stored_secret(conn)
            if stored is not None and not secrets.reads(stored):
                raise WrongSecretKey(_wrong_key(settings))
            await site_db.set_secret_key_check(conn, secrets.encrypt(KEY_CHECK_TEXT))
            token = await site_db.get_secret_key_check(conn)  # another process's, if it stored one first
    if token is None or not secrets.reads(token):
        raise WrongSecretKey(_wrong_key(settings))


def _wrong_key(settings: Settings) -> str:
    if settings.secret_key:
        where = "DCMAN_SECRET_KEY is not the key"
    else:
        where = (f"DCMAN_SECRET_KEY is not set and this process's key file {settings.data_dir / 'secret.key'} "
                 "is not the key")
    return (f"{where} the secrets in this site's database were encrypted with; every process of a site "
            "must be given the site's DCMAN_SECRET_KEY.")


async def site_identity(engine: AsyncEngine) -> dict[str, str]:
    """What another site needs to register this one as a system peer."""
    async with engine.connect() as conn:
        site = await site_db.get_site(conn)
    assert site is not None
    return {"uuid": site["uuid"], "name": site["name"]}
