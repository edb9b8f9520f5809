"""The simulator's fixed addressing (the site's tests and benchmarks rely on it).

Simulated subcloud i (0-based) owns the /29 block starting at
base(i) = 127.1.0.0 + 8*i:

    management_subnet            base/29
    management_gateway_address   base+1
    management_start_address     base+2   (its agent listens here)
    management_end_address       base+6
    name                         sim-{i+1:05d}     e.g. sim-00001 at 127.1.0.2
    region_name                  uuid5(NAMESPACE_DNS, name).hex

All of 127.0.0.0/8 is loopback on Linux, so these addresses need no set-up; they lie outside
127.0.0.0/16, the site's default system-controller subnet.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from typing import Any

FIRST_BASE = int(ipaddress.IPv4Address("127.1.0.0"))
BLOCK = 8
AGENT_OFFSET = 2
# The last /29 block that still lies inside 127.0.0.0/8.
MAX_COUNT = (int(ipaddress.IPv4Address("127.255.255.248")) - FIRST_BASE) // BLOCK + 1
_NAME_PREFIX = "sim-"
_FIRST_AGENT = FIRST_BASE + AGENT_OFFSET
_from_bytes = int.from_bytes
_inet_aton = socket.inet_aton


def base(index: int) -> int:
    """The first address of subcloud `index`'s /29 block, as an integer."""
    return FIRST_BASE + BLOCK * index


def agent_address(index: int) -> str:
    """The management start address of subcloud `index`, where its agent answers."""
    return str(ipaddress.IPv4Address(base(index) + AGENT_OFFSET))


def index_of_address(address: str, count: int) -> int | None:
    """The subcloud whose agent address this is, or None (called for every connection: no
    ipaddress objects here)."""
    try:
        offset = _from_bytes(_inet_aton(address), "big") - _FIRST_AGENT
    except (OSError, TypeError):
        return None
    index, remainder = divmod(offset, BLOCK)
    if remainder or not 0 <= index < count:
        return None
    return index


def name_of(index: int) -> str:
    return f"{_NAME_PREFIX}{index + 1:05d}"


def index_of_name(name: str, count: int) -> int | None:
    """The index of a simulated subcloud's name, or None when no subcloud has that name."""
    digits = name[len(_NAME_PREFIX):]
    if not name.startswith(_NAME_PREFIX) or not digits.isdigit() or not digits.isascii():
        return None
    index = int(digits) - 1
    if not 0 <= index < count or name_of(index) != name:
        return None
    return index


def region_name(name: str) -> str:
    """A stable 32-hex-digit region name derived from the subcloud name."""
    return uuid.uuid5(uuid.NAMESPACE_DNS, name).hex


def bootstrap_values(index: int, systemcontroller_gateway: str) -> dict[str, Any]:
    """The bootstrap values of subcloud `index`, ready to send with `subcloud add`."""
    first = base(index)
    ip = ipaddress.IPv4Address
    return {
        "name": name_of(index),
        "system_mode": "simplex",
        "management_subnet": f"{ip(first)}/29",
        "management_gateway_address": str(ip(first + 1)),
        "management_start_address": str(ip(first + AGENT_OFFSET)),
        "management_end_address": str(ip(first + 6)),
        "systemcontroller_gateway_address": systemcontroller_gateway,
        "external_oam_subnet": "10.10.0.0/16",
        "external_oam_gateway_address": "10.10.0.1",
        "external_oam_floating_address": "10.10.0.2",
    }
