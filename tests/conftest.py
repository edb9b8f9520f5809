"""Shared fixtures: a real `dcman serve` process, and in-process sites on SQLite and PostgreSQL.

PostgreSQL tests use the server on 127.0.0.1:5432 (trust auth, database `test`); where none
answers they are skipped with that reason.
"""

from __future__ import annotations

import base64
import itertools
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-Secret-1"
READER_USER = "viewer"
READER_PASSWORD = "reader-Secret-1"
PG_ADMIN_URL = os.environ.get("DCMAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
DCMAN = str(Path(sys.executable).with_name("dcman"))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# --- bootstrap values -----------------------------------------------------------------------

_subnet_numbers = itertools.count(1)


def bootstrap_values(name: str, **overrides: Any) -> dict[str, Any]:
    """Valid bootstrap values for a new subcloud; each call gets its own management range."""
    n = next(_subnet_numbers)
    prefix = f"172.{16 + n // 256}.{n % 256}"
    values = {
        "name": name,
        "system_mode": "simplex",
        "management_subnet": f"{prefix}.0/24",
        "management_start_address": f"{prefix}.2",
        "management_end_address": f"{prefix}.50",
        "management_gateway_address": f"{prefix}.1",
        "systemcontroller_gateway_address": "127.0.5.1",
        "external_oam_subnet": "10.10.10.0/24",
        "external_oam_gateway_address": "10.10.10.1",
        "external_oam_floating_address": "10.10.10.12",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def add_form(name: str, values: dict[str, Any] | None = None, **fields: Any) -> tuple[dict, dict]:
    """(data, files) of a `POST /v1.0/subclouds` multipart request, as the dcmanager client builds it."""
    values = values if values is not None else bootstrap_values(name)
    data = {"bootstrap-address": "10.10.10.12", "sysadmin_password": base64.b64encode(b"St8rlingX*").decode()}
    data.update({k: v for k, v in fields.items() if v is not None})
    files = {"bootstrap_values": ("bootstrap.yaml", yaml.safe_dump(values).encode(), "application/x-yaml")}
    for key in ("install_values", "deploy_config"):
        if key in data:
            files[key] = (f"{key}.yaml", data.pop(key).encode(), "application/x-yaml")
    return data, files


# --- databases ------------------------------------------------------------------------------


def _pg_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def _pg(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_URL)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@dataclass
class Template:
    """A migrated database holding the test accounts and long-lived tokens, copied per test."""

    backend: str
    location: str  # a file path (sqlite) or a database name (postgresql)
    admin_token: str = ""
    reader_token: str = ""

    def copy(self, tmp: Path) -> str:
        if self.backend == "sqlite":
            target = tmp / "dcman.sqlite"
            shutil.copy(self.location, target)
            return f"sqlite+aiosqlite:///{target}"
        name = f"dcman_t_{uuid.uuid4().hex[:12]}"
        _pg(f'CREATE DATABASE "{name}" TEMPLATE "{self.location}"')
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"

    def drop(self, url: str) -> None:
        if self.backend == "postgresql":
            _pg(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _settings(data_dir: Path, url: str) -> Any:
    from dcman.config import load_settings

    return load_settings(data_dir=data_dir, database_url=url, admin_user=ADMIN_USER,
                         admin_password=ADMIN_PASSWORD, token_lifetime=86400, secret_key=_SECRET_KEY,
                         site_name="test-site")


_SECRET_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()


async def _build_template(backend: str, tmp: Path) -> Template:
    from dcman.site import start_site
    from dcman.services import accounts

    if backend == "sqlite":
        location = str(tmp / "template.sqlite")
        url = f"sqlite+aiosqlite:///{location}"
    else:
        location = f"dcman_tpl_{uuid.uuid4().hex[:12]}"
        _pg(f'CREATE DATABASE "{location}"')
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{location}"
    ctx = await start_site(_settings(tmp, url))
    await accounts.create_account(ctx.engine, READER_USER, "reader", READER_PASSWORD)
    template = Template(backend, location)
    template.admin_token = (await accounts.login(ctx.engine, ADMIN_USER, ADMIN_PASSWORD, 86400 * 7)).token
    template.reader_token = (await accounts.login(ctx.engine, READER_USER, READER_PASSWORD, 86400 * 7)).token
    await ctx.engine.dispose()
    return template


@pytest.fixture(scope="session")
async def templates(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Template]]:
    found = {"sqlite": await _build_template("sqlite", tmp_path_factory.mktemp("tpl-sqlite"))}
    if _pg_available():
        found["postgresql"] = await _build_template("postgresql", tmp_path_factory.mktemp("tpl-pg"))
    yield found
    if "postgresql" in found:
        _pg(f'DROP DATABASE IF EXISTS "{found["postgresql"].location}" WITH (FORCE)')


SITE_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


@contextmanager
def site_database(backend: str) -> Iterator[dict[str, str]]:
    """The environment that gives a `dcman serve` process its own empty database: SQLite in its
    data directory, or a fresh PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        yield {}
        return
    if not _pg_available():
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432; PostgreSQL tests skipped")
    name = f"dcman_site_{uuid.uuid4().hex[:12]}"
    _pg(f'CREATE DATABASE "{name}"')
    try:
        yield {"DCMAN_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"}
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- in-process sites -----------------------------------------------------------------------


@dataclass
class Api:
    """An in-process site on a real database, reached through its ASGI app."""

    client: httpx.AsyncClient
    ctx: Any
    backend: str
    admin_token: str
    reader_token: str
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.headers = {"X-Auth-Token": self.admin_token}

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers=kw.pop("headers", self.headers), **kw)

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.post(path, headers=kw.pop("headers", self.headers), **kw)

    async def patch(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.patch(path, headers=kw.pop("headers", self.headers), **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.delete(path, headers=kw.pop("headers", self.headers), **kw)

    async def add_subcloud(self, name: str, values: dict | None = None, **fields: Any) -> dict[str, Any]:
        data, files = add_form(name, values, **fields)
        response = await self.post("/v1.0/subclouds", data=data, files=files)
        assert response.status_code == 200, response.text
        return response.json()

    async def subclouds(self) -> list[dict[str, Any]]:
        response = await self.get("/v1.0/subclouds")
        assert response.status_code == 200, response.text
        return response.json()["subclouds"]

    async def set_state(self, name: str, **columns: Any) -> None:
        """Put a subcloud in a state the test needs (as the audit or deploy would), in the database."""
        from sqlalchemy import update

        from dcman.db.tables import subclouds

        async with self.ctx.engine.begin() as conn:
            await conn.execute(update(subclouds).where(subclouds.c.name == name).values(**columns))


@pytest.fixture(params=SITE_BACKENDS)
async def api(request: pytest.FixtureRequest, templates: dict[str, Template], tmp_path: Path) -> AsyncIterator[Api]:
    from dcman.site import site_app, start_site

    backend = request.param
    if backend not in templates:
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432; PostgreSQL tests skipped")
    template = templates[backend]
    url = template.copy(tmp_path)
    settings = _settings(tmp_path, url)
    ctx = await start_site(settings)
    app = site_app(settings, ctx, run_loops=getattr(request, "node", None) is not None
                     and request.node.get_closest_marker("loops") is not None)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://site.test") as client:
            yield Api(client, ctx, backend, template.admin_token, template.reader_token)
    template.drop(url)


# --- a real `dcman serve` process -----------------------------------------------------------


@dataclass
class RunningSite:
    url: str
    admin_user: str
    admin_password: str
    data_dir: Path
    process: subprocess.Popen
    log: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    nofile: int | None = None
    tls: tuple[Path, Path, Path] | None = None  # (certificate, key, CA that issued them)
    host: str = "127.0.0.1"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What an httpx client verifies this site with: its CA when it serves https."""
        return ssl.create_default_context(cafile=str(self.tls[2])) if self.tls else True

    def env(self) -> dict[str, str]:
        env = {**os.environ, "DCMAN_URL": self.url, "DCMAN_USER": self.admin_user,
               "DCMAN_PASSWORD": self.admin_password, "DCMAN_DATA_DIR": str(self.data_dir)}
        if self.tls:
            env["DCMAN_CA_FILE"] = str(self.tls[2])
        return env


def start_site_process(data_dir: Path, extra_env: dict[str, str] | None = None,
                       timeout: float = 30.0, nofile: int | None = None,
                       tls: tuple[Path, Path, Path] | None = None, host: str = "127.0.0.1") -> RunningSite:
    """`dcman serve` on a free port of `host`; `nofile` caps its open files (soft and hard), as a
    small host would; `tls` (certificate, key, CA) makes it serve https, verified with that CA."""
    port = free_port(host)
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DCMAN_DATA_DIR": str(data_dir), "DCMAN_BIND": f"{host}:{port}",
           "DCMAN_ADMIN_USER": ADMIN_USER, "DCMAN_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "DCMAN_SITE_NAME": f"site-{port}", **(extra_env or {})}
    if tls:
        env.update(DCMAN_TLS_CERT_FILE=str(tls[0]), DCMAN_TLS_KEY_FILE=str(tls[1]))
    log = data_dir / "serve.log"
    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    process = subprocess.Popen([DCMAN, "serve"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                               preexec_fn=limit if nofile else None)
    running = RunningSite(f"{'https' if tls else 'http'}://{host}:{port}", ADMIN_USER, ADMIN_PASSWORD, data_dir,
                          process, log, dict(extra_env or {}), nofile, tls, host)
    verify = running.verify
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dcman serve exited early:\n{log.read_text()}")
        try:
            if httpx.get(running.url + "/", timeout=1, verify=verify).status_code == 200:
                return running
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"dcman serve did not answer within {timeout}s:\n{log.read_text()}")


def restart_site_process(site: RunningSite) -> RunningSite:
    """The same site again: its data directory, its database and its settings (on a new port)."""
    return start_site_process(site.data_dir, site.extra_env, nofile=site.nofile, tls=site.tls, host=site.host)


def stop_site_process(site: RunningSite) -> None:
    site.process.terminate()
    try:
        site.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        site.process.kill()


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSite]:
    """One real `dcman serve` process on SQLite, shared by the tests that need a live site."""
    running = start_site_process(tmp_path_factory.mktemp("site"))
    yield running
    stop_site_process(running)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgresql: runs against the PostgreSQL server on 127.0.0.1:5432")
    config.addinivalue_line("markers", "loops: the in-process site runs its background loops")


def token_for(site: RunningSite, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "password": password, "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    response = httpx.post(site.url + "/v3/auth/tokens", json=body, timeout=10, verify=site.verify)
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


