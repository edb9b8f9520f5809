"""`dcman serve`: run a whole site in this process."""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
from typing import Any

import click
import uvicorn

from dcman.config import Settings, SettingsError, load_settings
from dcman.tls import TlsSetupError, client_context, server_context


def fail(message: str) -> None:
    """Stop with one clear line, no traceback."""
    click.echo(f"dcman: {message}", err=True)
    sys.exit(2)


def _tls_options(settings: Settings, context: ssl.SSLContext | None) -> dict[str, Any]:
    """uvicorn's TLS options: the context built and checked here (the file names only make
    uvicorn know it serves https; it does not load them again)."""
    if context is None:
        return {}
    return {"ssl_certfile": settings.tls_cert_file, "ssl_keyfile": settings.tls_key_file,
            "ssl_context_factory": lambda _config, _default: context}


async def _serve(roles: str | None) -> None:
    from dcman.site import site_app, start_site
    from dcman.api.connections import KEEP_ALIVE_SECONDS, GuardedHttp, connection_cap, raise_descriptor_limit

    try:
        settings = load_settings(**({"roles": roles} if roles is not None else {}))
    except SettingsError as exc:
        fail(str(exc))
    # Certificates are checked before anything else starts, so a bad file stops start-up at once.
    try:
        tls = (server_context(settings.tls_cert_file, settings.tls_key_file)
               if settings.tls_cert_file and settings.tls_key_file else None)
        if settings.peer_ca_file:
            client_context(settings.peer_ca_file, "DCMAN_PEER_CA_FILE")
    except TlsSetupError as exc:
        fail(str(exc))
    from dcman.services.secrets import WrongSecretKey

    try:
        ctx = await start_site(settings)
    except WrongSecretKey as exc:
        fail(str(exc))
    except Exception as exc:  # database unreachable, data dir not writable, ...
        fail(f"cannot start the site: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    app = site_app(settings, ctx)
    GuardedHttp.max_connections = connection_cap(raise_descriptor_limit())
    # Idle keep-alive connections close after 5 s, request heads must arrive within 10 s
    # (GuardedHttp), bodies within 30 s (api/limits); at the cap, the oldest idle one is dropped.
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info",
                            access_log=False, lifespan="on", timeout_graceful_shutdown=5, http=GuardedHttp,
                            timeout_keep_alive=KEEP_ALIVE_SECONDS, **_tls_options(settings, tls))
    server = uvicorn.Server(config)
    click.echo(f"dcman: site {settings.site_name!r} serving on {settings.scheme}://{settings.bind} "
               f"(roles {settings.roles})", err=True)
    await server.serve()
    if not server.started:
        fail(f"cannot listen on {settings.bind} (DCMAN_BIND); is the port in use?")


@click.command()
@click.option("--roles", default=None, metavar="ROLES",
              help="What this process does, comma-separated among api,audit,deploy,peers "
                   "[env DCMAN_ROLES; default all]. Several processes share a PostgreSQL site.")
def serve(roles: str | None) -> None:
    """Start a site: the REST API and every background loop."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:  # uvloop (installed with uvicorn[standard]) cuts the audit's per-probe cost
        from uvloop import run
    except ImportError:
        run = asyncio.run
    run(_serve(roles))
