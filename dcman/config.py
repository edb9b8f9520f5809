"""Site settings, read from the environment (``DCMAN_*``) and an optional file.

A bad value raises :class:`SettingsError` whose message is one line naming the variable,
so that ``dcman serve`` can stop with exactly that line.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from dcman.domain.cluster import Role


class SettingsError(Exception):
    """A setting has a value dcman cannot start with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DCMAN_", env_file=os.environ.get("DCMAN_CONFIG_FILE"), extra="ignore"
    )

    data_dir: Path = Path("./dcman-data")
    database_url: str | None = None
    bind: str = "127.0.0.1:8119"
    site_name: str = socket.gethostname()
    admin_user: str = "admin"
    admin_password: str | None = None
    audit_interval: float = 30.0
    # How long a migration waits for a rehomed subcloud to come online before leaving it
    # unmanaged for the operator (the reference waits a fixed 120 s; slow links need more).
    rehome_online_timeout: float = 120.0
    subcloud_agent_port: int = 8127
    subcloud_agent_scheme: str = "https"
    system_controller_subnet: str = "127.0.0.0/16"
    system_controller_pool: str | None = None
    token_lifetime: int = 3600
    secret_key: str | None = None
    peer_ca_file: str | None = None
    # The CA the subcloud agents' certificates are verified against (default: the system store).
    subcloud_ca_file: str | None = None
    # PEM certificate chain and key of the API: both set, the site serves HTTPS only.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # Scale-out: what this process does, and the lease period of its shard leases.
    roles: str = "api,audit,deploy,peers"
    lease_seconds: float = 15.0

    @field_validator("bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. 127.0.0.1:8119")
        return value

    @field_validator("audit_interval", "rehome_online_timeout")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be a positive number of seconds")
        return value

    @field_validator("lease_seconds")
    @classmethod
    def _lease(cls, value: float) -> float:
        if not 0.4 <= value <= 3600:
            raise ValueError("must be a number of seconds between 0.4 and 3600")
        return value

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: str) -> str:
        from dcman.domain.cluster import parse_roles
        from dcman.domain.errors import InvalidInput

        try:
            return ",".join(parse_roles(value))
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None

    @field_validator("token_lifetime")
    @classmethod
    def _lifetime(cls, value: int) -> int:
        if value < 60:
            raise ValueError("must be at least 60 seconds")
        return value

    @field_validator("subcloud_agent_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError("must be a TCP port between 1 and 65535")
        return value

    @field_validator("subcloud_agent_scheme")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if value not in ("http", "https"):
            raise ValueError("must be http or https")
        return value

    @field_validator("system_controller_subnet")
    @classmethod
    def _subnet(cls, value: str) -> str:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError("must be a subnet in CIDR form, e.g. 127.0.0.0/16") from None
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: str | None) -> str | None:
        if not value:
            return None
        from cryptography.fernet import Fernet

        try:
            Fernet(value.encode())
        except ValueError:
            raise ValueError("must be a Fernet key: 32 bytes in url-safe base64 (44 characters)") from None
        return value

    @field_validator("peer_ca_file", "tls_cert_file", "tls_key_file")
    @classmethod
    def _optional_path(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("subcloud_ca_file")
    @classmethod
    def _subcloud_ca_file(cls, value: str | None) -> str | None:
        """Checked at start-up, so that a bad file stops the site rather than every probe."""
        if not value or not value.strip():
            return None
        from dcman.drivers.agent_tls import AgentTls
        from dcman.tls import TlsSetupError

        try:
            AgentTls.create(value.strip())
        except TlsSetupError as exc:
            raise ValueError(str(exc).removeprefix("DCMAN_SUBCLOUD_CA_FILE: ")) from None
        return value.strip()

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @property
    def host(self) -> str:
        return self.bind.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.bind.rpartition(":")[2])

    @property
    def scheme(self) -> str:
        """How the API is served: https when the site has its certificate."""
        return "https" if self.tls_cert_file else "http"

    @property
    def role_set(self) -> tuple[Role, ...]:
        from dcman.domain.cluster import parse_roles

        return parse_roles(self.roles)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'dcman.sqlite'}"


def load_settings(**overrides: object) -> Settings:
    """Read the settings; a bad value becomes one SettingsError line naming the variable."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"DCMAN_{field.upper()}: {message}") from None
    if bool(settings.tls_cert_file) != bool(settings.tls_key_file):
        given, missing = (("DCMAN_TLS_CERT_FILE", "DCMAN_TLS_KEY_FILE") if settings.tls_cert_file
                          else ("DCMAN_TLS_KEY_FILE", "DCMAN_TLS_CERT_FILE"))
        raise SettingsError(f"{missing}: must be set with {given} (HTTPS needs both the certificate and its key)")
    if settings.system_controller_pool is not None:
        from dcman.domain.network import parse_system_controller_network

        try:
            parse_system_controller_network(settings.system_controller_subnet, settings.system_controller_pool)
        except ValueError as exc:
            raise SettingsError(f"DCMAN_SYSTEM_CONTROLLER_POOL: {exc}") from None
    return settings
