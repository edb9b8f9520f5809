"""Bootstrap network rules (lifecycle §2.2): each rule refuses a bad value naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcman.domain.errors import InvalidInput
from dcman.domain.network import (
    ADMIN_KEYS,
    REQUIRED_BOOTSTRAP_KEYS,
    OtherSubcloudNetwork,
    SubcloudNetwork,
    parse_system_controller_network,
    validate_bootstrap_network,
)

SC = parse_system_controller_network("192.168.204.0/24", "192.168.204.2-192.168.204.100")
GOOD: dict[str, Any] = {
    "name": "subcloud1",
    "system_mode": "simplex",
    "management_subnet": "192.168.101.0/24",
    "management_start_address": "192.168.101.2",
    "management_end_address": "192.168.101.50",
    "management_gateway_address": "192.168.101.1",
    "systemcontroller_gateway_address": "192.168.204.101",
    "external_oam_subnet": "10.10.10.0/24",
    "external_oam_gateway_address": "10.10.10.1",
    "external_oam_floating_address": "10.10.10.12",
}
ADMIN = {
    "admin_subnet": "192.168.102.0/28",
    "admin_start_address": "192.168.102.2",
    "admin_end_address": "192.168.102.10",
    "admin_gateway_address": "192.168.102.1",
}
DROP = object()


def other(name: str = "subcloud2", subnet: str = "192.168.101.0/24", start: str = "192.168.101.100",
          end: str = "192.168.101.120") -> OtherSubcloudNetwork:
    return OtherSubcloudNetwork(name, subnet, start, end)


def check(changes: dict[str, Any] | None = None, others: list[OtherSubcloudNetwork] | None = None) -> SubcloudNetwork:
    values = {**GOOD, **(changes or {})}
    return validate_bootstrap_network({k: v for k, v in values.items() if v is not DROP}, SC, others or [])


def refused(changes: dict[str, Any], others: list[OtherSubcloudNetwork] | None = None) -> str:
    with pytest.raises(InvalidInput) as caught:
        check(changes, others)
    return caught.value.message


def test_good_example_is_normalised() -> None:
    padded = {key: f"  {value} " for key, value in GOOD.items()}
    assert check(padded) == SubcloudNetwork(
        "192.168.101.0/24", "192.168.101.2", "192.168.101.50", "192.168.101.1", "192.168.204.101"
    )


def test_ipv6_is_compressed() -> None:
    ipv6 = {
        "management_subnet": "FD01:0001:0000::/64",
        "management_start_address": "fd01:1::0002",
        "management_end_address": "fd01:1::50",
        "management_gateway_address": "fd01:1:0::1",
        "external_oam_subnet": "fd00::/64",
        "external_oam_gateway_address": "fd00::1",
        "external_oam_floating_address": "fd00::2",
    }
    result = check(ipv6)
    assert (result.management_subnet, result.management_start_ip, result.management_gateway_ip) == (
        "fd01:1::/64", "fd01:1::2", "fd01:1::1",
    )


@pytest.mark.parametrize("key", [*REQUIRED_BOOTSTRAP_KEYS, "management_gateway_address"])
@pytest.mark.parametrize("missing", [DROP, None, "  "])
def test_required_value_missing(key: str, missing: Any) -> None:
    assert refused({key: missing}) == f"Missing required bootstrap value: {key}."


@pytest.mark.parametrize("value", [24, ["192.168.101.0/24"], {"a": 1}, True])
def test_non_string_value(value: Any) -> None:
    assert "management_subnet must be a string" in refused({"management_subnet": value})


def test_dual_stack_refused() -> None:
    message = refused({"management_subnet": "192.168.101.0/24,fd01::/64"})
    assert "management_subnet" in message and "dual-stack" in message


def test_system_mode_must_be_known() -> None:
    assert "system_mode" in refused({"system_mode": "triplex"})


@pytest.mark.parametrize(
    "changes, field, words",
    [
        # subnet rule
        ({"management_subnet": "192.168.101.0"}, "management_subnet", "not a valid IP subnet"),
        ({"management_subnet": "192.168.101.0/33"}, "management_subnet", "not a valid IP subnet"),
        ({"management_subnet": "192.168.101.5/24"}, "management_subnet", "host bits"),
        ({"management_subnet": "fd01::/56"}, "management_subnet", "/64 or longer"),
        # N2: at least 7 addresses
        ({"management_subnet": "192.168.101.0/30"}, "management_subnet", "too small"),
        # address rule (N4)
        ({"management_start_address": "10.0.0.300"}, "management_start_address", "not a valid IP address"),
        ({"management_start_address": "192.168.102.2"}, "management_start_address", "is not in management_subnet"),
        ({"management_start_address": "192.168.101.0"}, "management_start_address", "network address"),
        ({"management_end_address": "192.168.101.255"}, "management_end_address", "broadcast address"),
        ({"management_end_address": "fd01::5"}, "management_end_address", "IPv6 address"),
        # N4: order and range size
        ({"management_start_address": "192.168.101.60"}, "management_end_address", "must not be lower"),
        ({"management_end_address": "192.168.101.4"}, "management_start_address..management_end_address",
         "at least 4"),
        # N5 / N7: management gateway
        ({"management_gateway_address": "192.168.100.1"}, "management_gateway_address", "is not in"),
        ({"management_gateway_address": "192.168.101.20"}, "management_gateway_address", "outside"),
        # N8: system controller gateway
        ({"systemcontroller_gateway_address": "192.168.205.1"}, "systemcontroller_gateway_address",
         "system controller subnet"),
        ({"systemcontroller_gateway_address": "192.168.204.50"}, "systemcontroller_gateway_address",
         "address pool"),
        # N9: OAM
        ({"external_oam_subnet": "10.10.10.0/31"}, "external_oam_subnet", "too small"),
        ({"external_oam_gateway_address": "10.10.11.1"}, "external_oam_gateway_address", "external_oam_subnet"),
        ({"external_oam_floating_address": "10.10.10.255"}, "external_oam_floating_address", "broadcast"),
    ],
)
def test_rule_refuses_bad_value(changes: dict[str, Any], field: str, words: str) -> None:
    message = refused(changes)
    assert field in message and words in message


def test_smallest_allowed_management_network() -> None:
    small = {"management_subnet": "192.168.101.0/29", "management_end_address": "192.168.101.5"}
    assert check(small).management_end_ip == "192.168.101.5"


def test_pool_optional_for_systemcontroller_gateway() -> None:
    values = {**GOOD, "systemcontroller_gateway_address": "192.168.204.50"}
    no_pool = parse_system_controller_network("192.168.204.0/24", None)
    assert validate_bootstrap_network(values, no_pool, []).systemcontroller_gateway_ip == "192.168.204.50"


def test_admin_values_take_precedence() -> None:
    result = check({**ADMIN, "management_gateway_address": DROP})
    assert result == SubcloudNetwork(
        "192.168.102.0/28", "192.168.102.2", "192.168.102.10", "192.168.102.1", "192.168.204.101"
    )


@pytest.mark.parametrize("key", ADMIN_KEYS)
def test_admin_values_all_or_nothing(key: str) -> None:
    message = refused({**ADMIN, key: DROP})
    assert key in message and "go together" in message


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"admin_subnet": "192.168.102.0/30"}, "admin_subnet", "too small"),
        ({"admin_end_address": "192.168.102.2"}, "admin_start_address..admin_end_address", "at least 2"),
        ({"admin_end_address": "192.168.102.1"}, "admin_end_address", "must not be lower"),
        ({"admin_gateway_address": "192.168.102.5"}, "admin_gateway_address", "outside"),
        ({"admin_gateway_address": "192.168.101.1"}, "admin_gateway_address", "is not in admin_subnet"),
    ],
)
def test_admin_rules(changes: dict[str, Any], field: str, words: str) -> None:
    message = refused({**ADMIN, **changes})
    assert field in message and words in message


def test_management_gateway_not_checked_when_admin_given() -> None:
    assert check({**ADMIN, "management_gateway_address": "192.168.101.20"}).management_gateway_ip == "192.168.102.1"


def test_range_overlap_names_other_subcloud() -> None:
    message = refused({}, [other(start="192.168.101.50", end="192.168.101.60")])
    assert "subcloud2" in message and "management_start_address..management_end_address" in message


def test_adjacent_ranges_in_shared_subnet_are_allowed() -> None:
    assert check(others=[other(start="192.168.101.51", end="192.168.101.60")])


def test_admin_range_is_the_one_checked_for_overlap() -> None:
    clash = other(subnet="192.168.102.0/28", start="192.168.102.10", end="192.168.102.12")
    message = refused({**ADMIN}, [clash])
    assert "admin_start_address..admin_end_address" in message and "subcloud2" in message


@pytest.mark.parametrize("their_subnet", ["10.10.10.0/28", "10.10.0.0/16"])
def test_oam_subnet_must_not_overlap_other_management_subnet(their_subnet: str) -> None:
    message = refused({}, [other(subnet=their_subnet, start="10.10.10.100", end="10.10.10.110")])
    assert "external_oam_subnet" in message and "subcloud2" in message


def test_unparseable_and_other_version_subclouds_are_skipped() -> None:
    others = [
        other("junk", "not-a-subnet", "x", "y"),
        other("v6", "fd01::/64", "fd01::2", "fd01::50"),
        OtherSubcloudNetwork("nulls", None, None, None),  # type: ignore[arg-type]
    ]
    assert check(others=others).management_start_ip == "192.168.101.2"


def test_values_must_be_a_mapping() -> None:
    with pytest.raises(InvalidInput):
        validate_bootstrap_network(["management_subnet"], SC, [])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "subnet, pool, words",
    [
        ("192.168.204.0", None, "system controller subnet"),
        ("192.168.204.0/24", "192.168.204.2", "start-end"),
        ("192.168.204.0/24", "192.168.204.2-192.168.205.9", "system controller pool end"),
        ("192.168.204.0/24", "192.168.204.9-192.168.204.2", "system controller pool end"),
    ],
)
def test_parse_system_controller_network_errors(subnet: str, pool: str | None, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_system_controller_network(subnet, pool)


def test_parse_system_controller_network() -> None:
    parsed = parse_system_controller_network(" 192.168.204.0/24 ", " ")
    assert (str(parsed.subnet), parsed.pool) == ("192.168.204.0/24", None)
    assert [str(a) for a in SC.pool or ()] == ["192.168.204.2", "192.168.204.100"]


# --- property: junk in, only InvalidInput out --------------------------------------------------------

KEYS = [*REQUIRED_BOOTSTRAP_KEYS, "management_gateway_address", *ADMIN_KEYS]
IP_TEXT = st.one_of(
    st.ip_addresses().map(str),
    st.integers(0, 255).map(lambda i: f"192.168.101.{i}"),
    st.integers(0, 255).map(lambda i: f"192.168.204.{i}"),
    st.builds(lambda address, prefix: f"{address}/{prefix}", st.ip_addresses(), st.integers(-1, 130)),
)
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    IP_TEXT,
    st.sampled_from(["simplex", "duplex", "duplex-direct", "1.2.3.4,::1", " ", "::1%eth0"]),
)
OTHERS = st.lists(
    st.builds(OtherSubcloudNetwork, st.text(max_size=5), IP_TEXT | st.text(max_size=8), IP_TEXT, IP_TEXT),
    max_size=3,
)


@given(values=st.dictionaries(st.sampled_from(KEYS), JUNK), others=OTHERS)
def test_random_junk_only_raises_invalid_input(values: dict[str, Any], others: list[OtherSubcloudNetwork]) -> None:
    try:
        validate_bootstrap_network(values, SC, others)
    except InvalidInput:
        pass


@given(changes=st.dictionaries(st.sampled_from(KEYS), JUNK, max_size=3), others=OTHERS)
def test_nearly_valid_values_only_raise_invalid_input(
    changes: dict[str, Any], others: list[OtherSubcloudNetwork]
) -> None:
    try:
        result = validate_bootstrap_network({**GOOD, **changes}, SC, others)
    except InvalidInput as error:
        assert error.message.endswith(".")
    else:
        assert isinstance(result, SubcloudNetwork)
