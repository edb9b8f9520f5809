"""`dcman agent` (the agent of one real subcloud) and `dcman sim` (a fleet of simulated subclouds)."""

from __future__ import annotations

import logging
import socket
import sys

import click

from dcman.agent import addressing
from dcman.agent.commands import parse_phase_commands
from dcman.agent.runtime import AgentOptions, SimOptions, StartError, default_region_name, run, serve_agent, serve_sim
from dcman.agent.subcloud import DEFAULT_SOFTWARE_VERSION


def _fail(command: str, message: str) -> None:
    """Stop with one clear line, no traceback."""
    click.echo(f"dcman {command}: {message}", err=True)
    sys.exit(2)


def _host_port(value: str, option: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"must be HOST:PORT, e.g. 127.0.0.1:8128, not {value!r}", param_hint=option)
    return host.strip("[]"), int(port)


@click.command()
@click.option("--bind", default="0.0.0.0:8127", show_default=True, help="HOST:PORT to answer on.")
@click.option("--name", default=None, help="The subcloud's name (default: this host's name).")
@click.option("--region-name", default=None, help="The subcloud's region name (default: derived from the name).")
@click.option("--software-version", default=DEFAULT_SOFTWARE_VERSION, show_default=True)
@click.option("--password", envvar="DCMAN_AGENT_PASSWORD", default=None,
              help="The subcloud's sysadmin password, the credential every call must carry "
                   "(env DCMAN_AGENT_PASSWORD).")
@click.option("--phase-command", "phase_commands", multiple=True, metavar="PHASE=COMMAND",
              help="Run COMMAND (via /bin/sh, payload as JSON on stdin, `PROGRESS n` lines for "
                   "progress, exit 0 for success) for PHASE. Repeatable.")
@click.option("--phase-seconds", type=click.FloatRange(0, 86400), default=0.5, show_default=True,
              help="How long a phase without a command takes (it then succeeds).")
@click.option("--backup-mb", type=click.FloatRange(0, 102400), default=1.0, show_default=True,
              help="The size in MiB of the backup a backup phase leaves (streamed to the site).")
@click.option("--backup-file", default=None, metavar="PATH",
              help="The file the backup phase's command writes (its payload names it as backup_file); "
                   "the site streams it after a successful backup, instead of a made-up backup.")
@click.option("--tls-cert", envvar="DCMAN_AGENT_TLS_CERT", default=None, metavar="PEM",
              help="Serve TLS with this certificate (and chain), which must name the subcloud's address "
                   "as an IP subjectAltName (env DCMAN_AGENT_TLS_CERT).")
@click.option("--tls-key", envvar="DCMAN_AGENT_TLS_KEY", default=None, metavar="PEM",
              help="The private key of --tls-cert (env DCMAN_AGENT_TLS_KEY).")
@click.option("--state-file", default=None, metavar="PATH",
              help="Keep the system controller, its gateway and the fencing epoch in this JSON file, so a "
                   "restarted agent stays fenced (default: in memory only).")
def agent(bind: str, name: str | None, region_name: str | None, software_version: str, password: str | None,
          phase_commands: tuple[str, ...], phase_seconds: float, backup_mb: float, backup_file: str | None,
          tls_cert: str | None, tls_key: str | None, state_file: str | None) -> None:
    """Run the agent of one subcloud: the agent protocol over HTTP, or HTTPS with --tls-cert."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, port = _host_port(bind, "--bind")
    if not password:
        _fail("agent", "the sysadmin password is required: --password or DCMAN_AGENT_PASSWORD")
    try:
        commands = parse_phase_commands(phase_commands)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--phase-command") from None
    name = name or socket.gethostname()
    options = AgentOptions(host=host, port=port, name=name, region_name=region_name or default_region_name(name),
                           password=password, software_version=software_version, phase_seconds=phase_seconds,
                           commands=commands, backup_mb=backup_mb, backup_file=backup_file, tls_cert=tls_cert,
                           tls_key=tls_key, state_file=state_file)
    try:
        run(serve_agent(options))
    except StartError as exc:
        _fail("agent", str(exc))


@click.command()
@click.option("--count", type=click.IntRange(1, addressing.MAX_COUNT), required=True,
              help="How many subclouds to simulate (sim-00001 at 127.1.0.2, then every 8th address).")
@click.option("--port", type=click.IntRange(1, 65535), envvar="DCMAN_SUBCLOUD_AGENT_PORT", default=8127,
              show_default=True, help="The agent port of every simulated subcloud (env DCMAN_SUBCLOUD_AGENT_PORT).")
@click.option("--control", default="127.0.0.1:8128", show_default=True, help="HOST:PORT of the control API.")
@click.option("--systemcontroller-gateway", default="127.0.0.1", show_default=True,
              help="systemcontroller_gateway_address in the subclouds' bootstrap values.")
@click.option("--password", default="St8rlingX*", show_default=True,
              help="The sysadmin password every simulated subcloud accepts.")
@click.option("--phase-seconds", type=click.FloatRange(0, 86400), default=0.5, show_default=True,
              help="How long each deploy or rehome phase takes, unless a fault says otherwise.")
@click.option("--backup-mb", type=click.FloatRange(0, 102400), default=1.0, show_default=True,
              help="The size in MiB of the backup each simulated subcloud's backup phase leaves, unless a backup_mb fault says otherwise (streamed to the site).")
@click.option("--tls-cert", default=None, metavar="PEM",
              help="Serve TLS: the CA certificate each simulated subcloud's own certificate (naming its "
                   "address) is issued from.")
@click.option("--tls-key", default=None, metavar="PEM", help="The private key of the --tls-cert CA.")
def sim(count: int, port: int, control: str, systemcontroller_gateway: str, password: str,
        phase_seconds: float, backup_mb: float, tls_cert: str | None, tls_key: str | None) -> None:
    """Simulate a fleet of subclouds on loopback addresses, with a control API for faults."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    control_host, control_port = _host_port(control, "--control")
    options = SimOptions(count=count, port=port, control_host=control_host, control_port=control_port,
                         systemcontroller_gateway=systemcontroller_gateway, password=password,
                         phase_seconds=phase_seconds, backup_mb=backup_mb, tls_cert=tls_cert, tls_key=tls_key)
    try:
        run(serve_sim(options))
    except StartError as exc:
        _fail("sim", str(exc))
