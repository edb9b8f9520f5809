"""The documents a subcloud is deployed with (bootstrap values, install values, deploy config):
stored without their secrets, which are sealed apart with the site key (dcman.domain.secrets),
and whole again only in what the deploy loop sends to the subcloud's own agent."""

from __future__ import annotations

from typing import Any, Mapping

import yaml

from dcman.domain.install_values import validate_install_values
from dcman.domain.secrets import merge_secrets, split_secrets
from dcman.domain.subcloud import Subcloud
from dcman.services.context import SiteContext
from dcman.services.forms import decode_password, parse_yaml_mapping

BMC_PASSWORD = "bmc_password"  # the reference's own field: in a column of its own, decoded


def bootstrap_columns(ctx: SiteContext, values: Mapping[str, Any]) -> dict[str, Any]:
    """Bootstrap values as stored: the public part, and its secrets sealed."""
    public, sealed = split_secrets({str(k): v for k, v in values.items()})
    return {"bootstrap_values": public, "bootstrap_secrets": ctx.secrets.seal(sealed)}


def install_columns(ctx: SiteContext, values: Mapping[str, Any], release: str, validate: bool = True) -> dict[str, Any]:
    """Install values as stored: checked for `release` (§2.2) unless told not to, the BMC
    password encrypted in its own column, any other secret sealed apart, and the install
    values the API shows (data_install), without any of them."""
    if validate:
        values = validate_install_values(values, release)
    rest = {k: v for k, v in values.items() if k != BMC_PASSWORD}
    public, sealed = split_secrets(rest)
    columns: dict[str, Any] = {"install_values": public, "install_secrets": ctx.secrets.seal(sealed)}
    if values.get(BMC_PASSWORD) is not None:
        columns[BMC_PASSWORD] = ctx.secrets.encrypt(decode_password(BMC_PASSWORD, values[BMC_PASSWORD]))
    return columns


def config_columns(ctx: SiteContext, text: str) -> dict[str, Any]:
    """A deploy config as stored: its text as uploaded when it holds no secret, else the YAML of
    its public part (the secrets sealed apart)."""
    public, sealed = split_secrets(parse_yaml_mapping("deploy_config", text))
    if not sealed:
        return {"deploy_config": text, "config_secrets": None}
    return {"deploy_config": yaml.safe_dump(public, sort_keys=False), "config_secrets": ctx.secrets.seal(sealed)}


def stored_install_values(ctx: SiteContext, subcloud: Subcloud) -> dict[str, Any]:
    """The stored install values with their sealed secrets, the BMC password apart."""
    return merge_secrets(dict(subcloud.install_values or {}), ctx.secrets.unseal(subcloud.install_secrets))


def agent_install_values(ctx: SiteContext, subcloud: Subcloud) -> dict[str, Any]:
    """What the install phase gets: the whole install values, the BMC password decrypted."""
    values = stored_install_values(ctx, subcloud)
    if subcloud.bmc_password:
        values[BMC_PASSWORD] = ctx.secrets.decrypt(subcloud.bmc_password)
    return values


def agent_bootstrap_values(ctx: SiteContext, subcloud: Subcloud) -> dict[str, Any]:
    """What the bootstrap and rehome phases get: the whole bootstrap values this site holds
    (a secondary copy holds no secrets: its peer never sends them)."""
    return merge_secrets(dict(subcloud.bootstrap_values or {}), ctx.secrets.unseal(subcloud.bootstrap_secrets))


def agent_deploy_config(ctx: SiteContext, subcloud: Subcloud) -> str | None:
    """What the config phase gets: the deploy config text, its secrets back in place."""
    if subcloud.deploy_config is None or not subcloud.config_secrets:
        return subcloud.deploy_config
    public = yaml.safe_load(subcloud.deploy_config) or {}
    return yaml.safe_dump(merge_secrets(public, ctx.secrets.unseal(subcloud.config_secrets)), sort_keys=False)
