"""What every use case needs: the settings, the database, the secret box, the drivers and the
loop wake-ups."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from dcman.config import Settings
from dcman.domain.cluster import LeaseKind
from dcman.domain.network import SystemControllerNetwork
from dcman.domain.peers import SystemPeer
from dcman.domain.throttle import LoginThrottle
from dcman.drivers.agent_client import AgentClient
from dcman.drivers.peer_site import PeerSite
from dcman.services.secrets import SecretBox
from dcman.cluster.shards import ShardSet


class Wakeup(asyncio.Event):
    """A loop's wake-up. `set()` also wakes that loop in the other processes sharing the
    database (`shared`, PostgreSQL NOTIFY); `set_local()` wakes only this process's."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.shared: Callable[[str], None] | None = None

    def set(self) -> None:
        super().set()
        if self.shared is not None:
            self.shared(self.name)

    def set_local(self) -> None:
        super().set()


def _wakeup(name: str) -> Callable[[], Wakeup]:
    return lambda: Wakeup(name)


@dataclass
class SiteContext:
    settings: Settings
    engine: AsyncEngine
    secrets: SecretBox
    system_controller: SystemControllerNetwork
    # The client of the subclouds' agents, with the site's agent settings (made once: it reads the CA file).
    agents: AgentClient
    site_uuid: str = ""
    # This process among those sharing the database (cluster/membership).
    process_id: str = ""
    # Set when a subcloud needs the deploy loop now rather than at its next tick.
    deploy_wakeup: Wakeup = field(default_factory=_wakeup("deploy"))
    # Set when an operator changed subclouds, so the audit reloads them now.
    audit_wakeup: Wakeup = field(default_factory=_wakeup("audit"))

    # Set when system peers or associations change, so the peer loops look again now.
    peers_wakeup: Wakeup = field(default_factory=_wakeup("peers"))
    sync_wakeup: Wakeup = field(default_factory=_wakeup("sync"))
    # Set when a peer-group migration was asked for, so the migration loop starts now.
    migration_wakeup: Wakeup = field(default_factory=_wakeup("migration"))
    # Set when a backup create or restore was asked for, so the backup loop starts it now.
    backup_wakeup: Wakeup = field(default_factory=_wakeup("backup"))
    # Set when a network reconfiguration or prestage was asked for (dcman.loops.subcloud_ops).
    operations_wakeup: Wakeup = field(default_factory=_wakeup("operations"))
    # The subclouds this process audits and deploys: those of the shards it holds leases on.
    shards: dict[LeaseKind, ShardSet] = field(
        default_factory=lambda: {kind: ShardSet(kind) for kind in LeaseKind})
    # Recent wrong passwords, per account and client (this process's memory only).
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    # The last `GET /alarms` answer this process built, with its version (services/subclouds).
    alarm_summary: tuple[int, bytes] | None = None

    @property
    def wakeups(self) -> dict[str, Wakeup]:
        return {w.name: w for w in (self.deploy_wakeup, self.audit_wakeup, self.peers_wakeup, self.sync_wakeup,
                                    self.migration_wakeup, self.backup_wakeup, self.operations_wakeup)}

    def peer_site(self, peer: SystemPeer, *, timeout: float = 10.0, retries: int = 2) -> PeerSite:
        """The client of a system peer's site (its account, DCMAN_PEER_CA_FILE); the caller
        closes it. Callers that must not wait long on a silent peer give fewer retries."""
        return PeerSite(peer.manager_endpoint, peer.manager_username, self.secrets.decrypt(peer.manager_password),
                        ca_file=self.settings.peer_ca_file, timeout=timeout, retries=retries)

    def peers_changed(self) -> None:
        self.peers_wakeup.set()
        self.sync_wakeup.set()

    def subclouds_changed(self) -> None:
        self.deploy_wakeup.set()
        self.operations_wakeup.set()
        self.audit_wakeup.set()
        self.sync_wakeup.set()
