"""Network and IP checks on a subcloud's bootstrap values (lifecycle spec §2.2).

Pure functions, so the API, the manager and the tests apply exactly the same rules: a bad value is
refused with one `InvalidInput` sentence that names the field, before anything is stored or deployed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

from dcman.domain.errors import InvalidInput

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
_T = TypeVar("_T")

# Always required (§2.1 rule 5); `management_gateway_address` is required too unless an admin
# network is given, because the admin gateway then replaces it.
REQUIRED_BOOTSTRAP_KEYS: tuple[str, ...] = (
    "name",
    "system_mode",
    "management_subnet",
    "management_start_address",
    "management_end_address",
    "systemcontroller_gateway_address",
    "external_oam_subnet",
    "external_oam_gateway_address",
    "external_oam_floating_address",
)
ADMIN_KEYS: tuple[str, ...] = (
    "admin_subnet",
    "admin_start_address",
    "admin_end_address",
    "admin_gateway_address",
)
SYSTEM_MODES: tuple[str, ...] = ("simplex", "duplex", "duplex-direct")

# Minimum sizes, in addresses (SEED rules N2, N4, N6, N9).
MIN_MANAGEMENT_SUBNET = 7
MIN_MANAGEMENT_RANGE = 4
MIN_ADMIN_SUBNET = 5
MIN_ADMIN_RANGE = 2
MIN_OAM_SUBNET = 3
MIN_IPV6_PREFIX = 64


@dataclass(frozen=True)
class SystemControllerNetwork:
    """The system controller's management network, against which N8 checks the subcloud's route."""

    subnet: IPNetwork  # the site's management subnet
    pool: tuple[IPAddress, IPAddress] | None  # the site's own allocation range (start, end), if known


@dataclass(frozen=True)
class OtherSubcloudNetwork:
    """What the overlap checks need to know of every OTHER existing subcloud (its stored columns)."""

    name: str
    management_subnet: str
    management_start_ip: str
    management_end_ip: str


@dataclass(frozen=True)
class SubcloudNetwork:
    """The normalised network columns stored for a subcloud (admin values win when given)."""

    management_subnet: str  # compressed canonical form, e.g. "192.168.101.0/24"
    management_start_ip: str
    management_end_ip: str
    management_gateway_ip: str
    systemcontroller_gateway_ip: str


# --- value helpers (also used by install_values) ------------------------------------------------


def shown(value: object) -> str:
    """`value` as short text for an error message, so junk input cannot flood (or break) the message."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception:  # e.g. an int too long to print, or a structure nested too deeply
        return "(unprintable value)"
    return text if len(text) <= 64 else text[:61] + "..."


def _kind(value: object) -> str:
    """A plain-words name of a value's type, for 'must be a string' errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def is_given(values: Mapping[str, object], key: str) -> bool:
    """Whether `key` carries a value: YAML leaves an empty entry as None, a blank string counts as none."""
    value = values.get(key)
    return value is not None and not (isinstance(value, str) and not value.strip())


def as_text(key: str, value: object) -> str:
    """`value` as a stripped, non-empty string; any other type is refused rather than coerced."""
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string, not {_kind(value)}.")
    text = value.strip()
    if not text:
        raise InvalidInput(f"{key} must not be empty.")
    return text


def bootstrap_address(value: object, field: str = "bootstrap-address") -> str:
    """The address a subcloud is reached at to bootstrap it: one IP address, canonical."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"The {field} is required.")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise InvalidInput(f"The {field} {value!r} is not a valid IP address.") from None


def _ip_text(key: str, value: object) -> str:
    """The text of an address or subnet value; dual-stack pairs ("v4,v6") are refused explicitly."""
    text = as_text(key, value)
    if "," in text:
        raise InvalidInput(f"{key} {shown(text)} is a dual-stack value, and dual-stack networks are not supported.")
    return text


def parse_ip(key: str, value: object) -> IPAddress:
    """`value` parsed as a single IPv4 or IPv6 address (no zone index)."""
    text = _ip_text(key, value)
    try:
        if "%" not in text:
            return ipaddress.ip_address(text)
    except ValueError:
        pass
    raise InvalidInput(f"{key} {shown(text)} is not a valid IP address.")


def parse_network(key: str, value: object) -> IPNetwork:
    """`value` parsed as an "address/prefix" network; host bits must be zero so no typo is silently fixed."""
    text = _ip_text(key, value)
    if "/" in text and "%" not in text:
        try:
            return ipaddress.ip_network(text)
        except ValueError:
            try:
                fixed = ipaddress.ip_network(text, strict=False)
            except ValueError:
                pass
            else:
                raise InvalidInput(f"{key} {shown(text)} has host bits set; the network is {fixed}.") from None
    raise InvalidInput(f"{key} {shown(text)} is not a valid IP subnet in address/prefix form.")


# --- one helper per rule kind ---------------------------------------------------------------------


def _subnet(key: str, value: object, min_size: int) -> IPNetwork:
    """Subnet rule: parses, holds at least `min_size` addresses, and an IPv6 prefix is /64 or longer."""
    subnet = parse_network(key, value)
    if subnet.num_addresses < min_size:
        raise InvalidInput(
            f"{key} {subnet} is too small: it has {subnet.num_addresses} addresses "
            f"and at least {min_size} are required."
        )
    if subnet.version == 6 and subnet.prefixlen < MIN_IPV6_PREFIX:
        raise InvalidInput(
            f"{key} {subnet} has prefix length /{subnet.prefixlen} but IPv6 subnets must be /64 or longer."
        )
    return subnet


def _address_in(key: str, value: object, subnet: IPNetwork, subnet_label: str) -> IPAddress:
    """Address rule: parses, same IP version as `subnet`, inside it, and not its first or last address."""
    address = parse_ip(key, value)
    where = f"{subnet_label} {subnet}"
    if address.version != subnet.version:
        raise InvalidInput(
            f"{key} {address} is an IPv{address.version} address but {where} is IPv{subnet.version}."
        )
    if address not in subnet:
        raise InvalidInput(f"{key} {address} is not in {where}.")
    if address == subnet.network_address:
        raise InvalidInput(f"{key} {address} is the network address of {where}.")
    if address == subnet.broadcast_address:
        last = "broadcast" if subnet.version == 4 else "last"
        raise InvalidInput(f"{key} {address} is the {last} address of {where}.")
    return address


def _range(start_key: str, start: IPAddress, end_key: str, end: IPAddress, min_count: int) -> None:
    """Range rule: start <= end and the inclusive range holds at least `min_count` addresses."""
    if end < start:
        raise InvalidInput(f"{end_key} {end} must not be lower than {start_key} {start}.")
    count = int(end) - int(start) + 1
    if count < min_count:
        raise InvalidInput(
            f"The range {start_key}..{end_key} ({start}-{end}) holds {count} addresses "
            f"but at least {min_count} are required."
        )


def _outside(key: str, address: IPAddress, start: IPAddress, end: IPAddress, range_label: str) -> None:
    """Collision rule: `address` must not fall inside the inclusive range [start, end]."""
    if address.version == start.version and start <= address <= end:
        raise InvalidInput(f"{key} {address} must lie outside {range_label} {start}-{end}.")


def _parsed(parse: Callable[[str], _T], text: object) -> _T | None:
    """`parse(text)`, or None when a stored value of another subcloud does not parse (it is then skipped)."""
    try:
        return parse(text)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class _Block:
    """A validated subnet with its allocation range and (optionally) its gateway."""

    prefix: str
    subnet: IPNetwork
    start: IPAddress
    end: IPAddress
    gateway: IPAddress | None

    @property
    def range_keys(self) -> str:
        return f"{self.prefix}_start_address..{self.prefix}_end_address"


def _block(values: Mapping[str, object], prefix: str, min_subnet: int, min_range: int, with_gateway: bool) -> _Block:
    """The `<prefix>_subnet/_start_address/_end_address[/_gateway_address]` group (N2, N4-N7)."""
    subnet_key, start_key, end_key, gateway_key = (
        f"{prefix}_{part}" for part in ("subnet", "start_address", "end_address", "gateway_address")
    )
    subnet = _subnet(subnet_key, values.get(subnet_key), min_subnet)
    start = _address_in(start_key, values.get(start_key), subnet, subnet_key)
    end = _address_in(end_key, values.get(end_key), subnet, subnet_key)
    _range(start_key, start, end_key, end, min_range)
    block = _Block(prefix, subnet, start, end, None)
    if not with_gateway:
        return block
    gateway = _address_in(gateway_key, values.get(gateway_key), subnet, subnet_key)
    _outside(gateway_key, gateway, start, end, f"the range {block.range_keys}")
    return _Block(prefix, subnet, start, end, gateway)


def _check_overlaps(block: _Block, oam: IPNetwork, others: Iterable[OtherSubcloudNetwork]) -> None:
    """CUR overlap rules: no shared range addresses, and the OAM subnet clear of others' management subnets."""
    for other in others:
        start = _parsed(ipaddress.ip_address, other.management_start_ip)
        end = _parsed(ipaddress.ip_address, other.management_end_ip)
        if start is not None and end is not None and start.version == end.version == block.start.version:
            if start <= block.end and block.start <= end:
                raise InvalidInput(
                    f"The range {block.range_keys} ({block.start}-{block.end}) overlaps the management "
                    f"address range {start}-{end} of subcloud {other.name}."
                )
        subnet = _parsed(lambda text: ipaddress.ip_network(text, strict=False), other.management_subnet)
        if subnet is not None and subnet.version == oam.version and oam.overlaps(subnet):
            raise InvalidInput(
                f"external_oam_subnet {oam} overlaps the management subnet {subnet} of subcloud {other.name}."
            )


# --- public entry points --------------------------------------------------------------------------


def validate_bootstrap_network(
    values: Mapping[str, object],
    system_controller: SystemControllerNetwork,
    others: Iterable[OtherSubcloudNetwork],
) -> SubcloudNetwork:
    """Check the network part of bootstrap values (§2.2 N2, N4-N9 + CUR range overlap) and normalise it.

    `others` are the OTHER subclouds (leave out the one being re-validated). Raises only `InvalidInput`,
    whatever the types in `values`. Admin values, when given, become the stored management columns.
    """
    if not isinstance(values, Mapping):
        raise InvalidInput("Bootstrap values must be a mapping of names to values.")
    admin_given = [key for key in ADMIN_KEYS if is_given(values, key)]
    required = REQUIRED_BOOTSTRAP_KEYS + (() if admin_given else ("management_gateway_address",))
    for key in required:
        if not is_given(values, key):
            raise InvalidInput(f"Missing required bootstrap value: {key}.")
        as_text(key, values[key])
    if admin_given and len(admin_given) < len(ADMIN_KEYS):
        missing = next(key for key in ADMIN_KEYS if key not in admin_given)
        raise InvalidInput(
            f"Missing bootstrap value {missing}: the admin network values {', '.join(ADMIN_KEYS)} go together."
        )

    mode = as_text("system_mode", values["system_mode"])
    if mode not in SYSTEM_MODES:
        raise InvalidInput(f"system_mode {shown(mode)} is not one of {', '.join(SYSTEM_MODES)}.")

    management = _block(values, "management", MIN_MANAGEMENT_SUBNET, MIN_MANAGEMENT_RANGE, not admin_given)
    effective = (
        _block(values, "admin", MIN_ADMIN_SUBNET, MIN_ADMIN_RANGE, True) if admin_given else management
    )

    sc_key = "systemcontroller_gateway_address"
    sc_gateway = _address_in(sc_key, values[sc_key], system_controller.subnet, "the system controller subnet")
    if system_controller.pool is not None:
        _outside(sc_key, sc_gateway, *system_controller.pool, "the system controller address pool")

    oam = _subnet("external_oam_subnet", values["external_oam_subnet"], MIN_OAM_SUBNET)
    for key in ("external_oam_gateway_address", "external_oam_floating_address"):
        _address_in(key, values[key], oam, "external_oam_subnet")

    _check_overlaps(effective, oam, others)
    assert effective.gateway is not None
    return SubcloudNetwork(
        management_subnet=str(effective.subnet),
        management_start_ip=str(effective.start),
        management_end_ip=str(effective.end),
        management_gateway_ip=str(effective.gateway),
        systemcontroller_gateway_ip=str(sc_gateway),
    )


def parse_system_controller_network(subnet: str, pool: str | None) -> SystemControllerNetwork:
    """Parse the site's own management subnet and optional "start-end" pool (settings); raises ValueError."""
    label = "system controller subnet"
    try:
        network = _subnet(label, subnet, 3)  # room for at least one host address
        if pool is None or not pool.strip():
            return SystemControllerNetwork(network, None)
        first, dash, last = pool.partition("-")
        if not dash:
            raise InvalidInput(f"system controller pool {shown(pool)} must have the form start-end.")
        start = _address_in("system controller pool start", first, network, label)
        end = _address_in("system controller pool end", last, network, label)
        _range("system controller pool start", start, "system controller pool end", end, 1)
        return SystemControllerNetwork(network, (start, end))
    except InvalidInput as error:
        raise ValueError(error.message) from None


def validate_management_network(
    values: Mapping[str, object],
    system_controller: SystemControllerNetwork,
    others: Iterable[OtherSubcloudNetwork],
) -> tuple[str, str, str, str]:
    """A new management network alone (network reconfiguration, §2.6): the `management_*`
    keys of bootstrap values obey N2, N4, N5 and N7, the range overlaps no other subcloud's,
    and the subnet lies clear of the site's own. Returns (subnet, start, end, gateway), normalised."""
    block = _block(values, "management", MIN_MANAGEMENT_SUBNET, MIN_MANAGEMENT_RANGE, True)
    site = system_controller.subnet
    if block.subnet.version == site.version and block.subnet.overlaps(site):
        raise InvalidInput(f"management_subnet {block.subnet} overlaps the system controller subnet {site}.")
    for other in others:
        start = _parsed(ipaddress.ip_address, other.management_start_ip)
        end = _parsed(ipaddress.ip_address, other.management_end_ip)
        if start is not None and end is not None and start.version == end.version == block.start.version \
                and start <= block.end and block.start <= end:
            raise InvalidInput(f"The range {block.start}-{block.end} overlaps the management address range "
                               f"{start}-{end} of subcloud {other.name}.")
    assert block.gateway is not None
    return str(block.subnet), str(block.start), str(block.end), str(block.gateway)
