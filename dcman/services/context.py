"""What every use case needs: the settings, the database, the secret box and the loop wake-ups."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from dcman.config import Settings
from dcman.domain.network import SystemControllerNetwork
from dcman.services.secrets import SecretBox


@dataclass
class SiteContext:
    settings: Settings
    engine: AsyncEngine
    secrets: SecretBox
    system_controller: SystemControllerNetwork
    site_uuid: str = ""
    # Set when a subcloud needs the deploy loop now rather than at its next tick.
    deploy_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when an operator changed subclouds, so the audit reloads them now.
    audit_wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    # Set when system peers or associations change, so the peer loops look again now.
    peers_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    sync_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when a peer-group migration was asked for, so the migration loop starts now.
    migration_wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def peers_changed(self) -> None:
        self.peers_wakeup.set()
        self.sync_wakeup.set()

    def subclouds_changed(self) -> None:
        self.deploy_wakeup.set()
        self.audit_wakeup.set()
        self.sync_wakeup.set()
