"""The process entry points: one real agent (`dcman agent`) or the simulator (`dcman sim`).

Each runs one asyncio event loop — uvloop when it is installed (it comes with
`uvicorn[standard]`), because it roughly halves the per-connection cost of the simulator's
accept/read/write/close cycle — until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from dcman.agent import addressing, phases, state_file
from dcman.agent.control import ControlApi
from dcman.agent.credentials import Credential
from dcman.agent.fleet import Fleet
from dcman.agent.http import Handler, HandlerResult, HttpServer, Request
from dcman.agent.protocol import AgentProtocol
from dcman.agent.subcloud import DEFAULT_SOFTWARE_VERSION, SubcloudState
from dcman.agent.tls import ServerTls, agent_tls, simulator_tls
from dcman.tls import TlsSetupError

log = logging.getLogger("dcman.agent")


class StartError(Exception):
    """The process cannot start (e.g. its port is taken); the message is one line."""


@dataclass(frozen=True)
class AgentOptions:
    host: str
    port: int
    name: str
    region_name: str
    password: str
    software_version: str = DEFAULT_SOFTWARE_VERSION
    phase_seconds: float = 0.5
    commands: dict[str, str] = field(default_factory=dict)
    backup_mb: float = 1.0  # the size of the backup a backup phase leaves, without backup_file
    backup_file: str | None = None  # the file the backup command writes, streamed to the site
    # PEM files of the subcloud's certificate (naming its address) and key; both or neither.
    tls_cert: str | None = None
    tls_key: str | None = None
    state_file: str | None = None  # keeps the controller and fencing epoch across restarts


@dataclass(frozen=True)
class SimOptions:
    count: int
    port: int
    control_host: str = "127.0.0.1"
    control_port: int = 8128
    systemcontroller_gateway: str = "127.0.0.1"
    password: str = "St8rlingX*"
    phase_seconds: float = 0.5
    backup_mb: float = 1.0  # unless a subcloud's backup_mb fault says otherwise
    listen_host: str = "0.0.0.0"
    # PEM files of the CA the simulated subclouds' certificates are issued from; both or neither.
    tls_cert: str | None = None
    tls_key: str | None = None


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on uvloop when available, else on the standard asyncio loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        asyncio.run(main)
        return
    if sys.version_info >= (3, 12):  # pragma: no cover
        uvloop.run(main)
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main)


async def serve_agent(options: AgentOptions) -> None:
    """Answer the agent protocol for this one subcloud until stopped."""
    state = SubcloudState(options.name, options.region_name, options.software_version)
    kept_at = Path(options.state_file) if options.state_file else None
    if kept_at is not None:
        try:
            state_file.load(kept_at, state)
        except state_file.StateFileError as exc:
            raise StartError(str(exc)) from None
    protocol = AgentProtocol(Credential(options.password), phase_seconds=options.phase_seconds,
                             commands=options.commands, backup_mb=options.backup_mb,
                             backup_file=Path(options.backup_file) if options.backup_file else None)
    handler: Handler = partial(protocol.handle, state)
    if kept_at is not None:
        handler = _keeping(handler, state, kept_at)
    tls = _tls(agent_tls, options.tls_cert, options.tls_key)
    server = HttpServer(lambda _address: handler, tls=tls)
    await _listen(server, options.host, options.port, "--bind")
    scheme = "https" if tls else "http"
    print(f"agent: {options.name} (region {options.region_name}) on {scheme}://{options.host}:{options.port}",
          flush=True)
    try:
        await _until_stopped()
    finally:
        if state.phase_state == phases.RUNNING:  # do not leave a phase command running
            phases.abort(state)
        await server.close()
        if kept_at is not None:  # a command phase may have finished since the last request
            phases.settle(state)
            try:
                state_file.save(kept_at, state_file.kept(state))
            except OSError as exc:
                log.error("cannot write the state file %s: %s", kept_at, exc.strerror or exc)


async def serve_sim(options: SimOptions) -> None:
    """Serve `options.count` simulated subclouds on one socket, and the control API."""
    fleet = Fleet(options.count, systemcontroller_gateway=options.systemcontroller_gateway,
                  phase_seconds=options.phase_seconds, backup_mb=options.backup_mb)
    protocol = AgentProtocol(Credential(options.password), phase_seconds=options.phase_seconds,
                             readdress=fleet.readdress, backup_mb=options.backup_mb)
    handle = protocol.handle
    index_of = fleet.index_of_address
    state_of = fleet.state

    def bind(address: str) -> Handler | None:
        """The handler of the subcloud this connection was made to; None resets it (no such
        subcloud, or the subcloud is unreachable)."""
        index = index_of(address)
        if index is None:
            return None
        state = state_of(index)
        if not state.reachable:
            return None
        return partial(handle, state)

    control_api = ControlApi(fleet, options.port)
    tls = _tls(simulator_tls, options.tls_cert, options.tls_key)
    agents = HttpServer(bind, tls=tls)
    control = HttpServer(lambda _address: control_api.handle, idle_timeout=600.0, max_connections=500)
    await _listen(agents, options.listen_host, options.port, "--port")
    try:
        await _listen(control, options.control_host, options.control_port, "--control")
    except StartError:
        await agents.close()
        raise
    print(f"sim: {options.count} subclouds on {fleet.first_address}..{fleet.last_address} port {options.port}"
          f"{' (TLS)' if tls else ''}, control http://{options.control_host}:{options.control_port}", flush=True)
    try:
        await _until_stopped()
    finally:
        await control.close()
        await agents.close()


def _keeping(handle: Handler, state: SubcloudState, path: Path) -> Handler:
    """`handle`, saving the kept fields after any request that changed them (a claim at once; a
    finished bootstrap or rehome with the next request, which is what settles it)."""
    last = [state_file.kept(state)]

    def handler(request: Request) -> HandlerResult:
        result = handle(request)
        now = state_file.kept(state)
        if now != last[0]:
            try:
                state_file.save(path, now)
                last[0] = now
            except OSError as exc:
                log.error("cannot write the state file %s: %s", path, exc.strerror or exc)
        return result

    return handler


def _tls(make, cert: str | None, key: str | None) -> ServerTls | None:  # type: ignore[no-untyped-def]
    """The TLS of a server from its two PEM files, None without them; StartError when unusable."""
    if cert is None and key is None:
        return None
    if not cert or not key:
        raise StartError("--tls-cert and --tls-key go together: give both or neither")
    try:
        return make(cert, key)
    except TlsSetupError as exc:
        raise StartError(str(exc)) from None


async def _listen(server: HttpServer, host: str, port: int, option: str) -> None:
    try:
        await server.start(host, port)
    except OSError as exc:
        raise StartError(f"cannot listen on {host}:{port} ({option}): {exc.strerror or exc}") from None


async def _until_stopped() -> None:
    """Wait for SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    try:
        await stopped.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def default_region_name(name: str) -> str:
    """A real agent's region name when none is given: derived from its name, as the simulator's."""
    return addressing.region_name(name)
