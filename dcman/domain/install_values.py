"""Checks on a subcloud's install values (lifecycle spec §2.2, "Install values").

Pure, so a bad install file is refused with one clear sentence at request time instead of failing
minutes later in the remote installer. dcman keeps no ISO vault, so the reference's ISO check is absent.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from dcman.domain.errors import InvalidInput
from dcman.domain.network import IPAddress, as_text, is_given, parse_ip, parse_network, shown
from dcman.domain.values import as_integer

MANDATORY_INSTALL_KEYS: tuple[str, ...] = (
    "bootstrap_interface",
    "bootstrap_address",
    "bootstrap_address_prefix",
    "install_type",
    "bmc_username",
    "bmc_address",
    "bmc_password",
)
INSTALL_TYPES = range(0, 6)
MIN_PERSISTENT_SIZE_MB = 30000
RVMC_DEBUG_LEVELS = range(0, 5)

def _integer(key: str, value: object, low: int, high: int | None = None, unit: str = "") -> int:
    """An integer (or a string of decimal digits) within [low, high]; booleans and floats are refused."""
    number = as_integer(value, signed=True, floats=False)
    bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
    if number is None or number < low or (high is not None and number > high):
        raise InvalidInput(f"Install value {key} {shown(value)} must be a whole number {bounds}{unit}.")
    return number


def _base64_password(value: object) -> str:
    """The base64 text of the BMC password; it must decode to UTF-8 so the installer can use it."""
    text = value.strip() if isinstance(value, str) else ""
    try:
        if not text:
            raise ValueError("not a non-empty string")
        base64.b64decode(text, validate=True).decode("utf-8")
    except ValueError:
        message = "Install value bmc_password is not valid base64; give the BMC password base64-encoded."
        raise InvalidInput(message) from None
    return text


def _same_version(key: str, value: object, bootstrap: IPAddress) -> IPAddress:
    """An address that must share the bootstrap address's IP version (one install network per subcloud)."""
    address = parse_ip(key, value)
    if address.version != bootstrap.version:
        raise InvalidInput(
            f"Install value {key} {address} is IPv{address.version} but bootstrap_address is IPv{bootstrap.version}."
        )
    return address


def validate_install_values(values: object, release: str) -> dict[str, object]:
    """Check install values for `release` and return a cleaned copy (stripped, canonical addresses).

    Unknown keys are passed through untouched; `software_version` is set to `release`. Raises only
    `InvalidInput`, whatever the types inside `values`.
    """
    if not isinstance(values, Mapping):
        raise InvalidInput("install_values must be a mapping of names to values.")
    if not is_given(values, "bmc_password"):
        raise InvalidInput("Install value bmc_password is required and must be the base64-encoded BMC password.")
    cleaned = dict(values)
    cleaned["bmc_password"] = _base64_password(values["bmc_password"])
    for key in MANDATORY_INSTALL_KEYS:
        if not is_given(values, key):
            raise InvalidInput(f"Missing mandatory install value: {key}.")

    if "software_version" in values:
        version = values["software_version"]  # YAML may read 24.09 as a float; compare its text
        version_text = version.strip() if isinstance(version, str) else shown(version)
        if version_text != release:
            raise InvalidInput(
                f"Install value software_version {shown(version_text)} does not match the requested release {release}."
            )
    cleaned["software_version"] = release

    for key in ("bootstrap_interface", "bmc_username"):
        cleaned[key] = as_text(key, values[key])
    cleaned["install_type"] = _integer("install_type", values["install_type"], INSTALL_TYPES[0], INSTALL_TYPES[-1])
    bootstrap = parse_ip("bootstrap_address", values["bootstrap_address"])
    cleaned["bootstrap_address"] = str(bootstrap)
    cleaned["bootstrap_address_prefix"] = _integer(
        "bootstrap_address_prefix", values["bootstrap_address_prefix"], 1, bootstrap.max_prefixlen
    )
    cleaned["bmc_address"] = str(_same_version("bmc_address", values["bmc_address"], bootstrap))
    if "nexthop_gateway" in values:
        cleaned["nexthop_gateway"] = str(_same_version("nexthop_gateway", values["nexthop_gateway"], bootstrap))
    if "network_address" in values:
        for needed in ("nexthop_gateway", "network_mask"):
            if needed not in values:
                raise InvalidInput(f"Install value network_address requires {needed} to be given too.")
        mask = values["network_mask"]
        if isinstance(mask, int) and not isinstance(mask, bool) and 0 <= mask <= 128:
            mask = str(mask)
        if not isinstance(mask, str):
            raise InvalidInput(f"Install value network_mask {shown(mask)} must be a prefix length or a netmask.")
        address = as_text("network_address", values["network_address"])
        network = parse_network("network_address", f"{address}/{mask.strip()}")
        _same_version("network_address", str(network.network_address), bootstrap)
        cleaned["network_address"] = str(network.network_address)

    if "persistent_size" in values:
        cleaned["persistent_size"] = _integer(
            "persistent_size", values["persistent_size"], MIN_PERSISTENT_SIZE_MB, unit=" MB"
        )
    if "hw_settle" in values:
        cleaned["hw_settle"] = _integer("hw_settle", values["hw_settle"], 0)
    if "extra_boot_params" in values:
        params = as_text("extra_boot_params", values["extra_boot_params"])
        if any(char.isspace() for char in params):
            raise InvalidInput("Install value extra_boot_params must not contain spaces; separate arguments with ','.")
        cleaned["extra_boot_params"] = params
    if "rd.net.timeout.ipv6dad" in values:
        cleaned["rd.net.timeout.ipv6dad"] = _integer("rd.net.timeout.ipv6dad", values["rd.net.timeout.ipv6dad"], 1)
    if "rvmc_debug_level" in values:
        cleaned["rvmc_debug_level"] = _integer(
            "rvmc_debug_level", values["rvmc_debug_level"], RVMC_DEBUG_LEVELS[0], RVMC_DEBUG_LEVELS[-1]
        )
    return cleaned
