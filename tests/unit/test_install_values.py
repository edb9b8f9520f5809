"""Install-values rules (lifecycle §2.2, "Install values"): each refuses a bad value naming the field."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcman.domain.errors import InvalidInput
from dcman.domain.install_values import MANDATORY_INSTALL_KEYS, validate_install_values
from dcman.domain.secrets import is_secret_key

RELEASE = "24.09"
PASSWORD = base64.b64encode(b"s3cret!").decode()
GOOD: dict[str, Any] = {
    "bootstrap_interface": "enp0s3",
    "bootstrap_address": "10.10.10.12",
    "bootstrap_address_prefix": 24,
    "install_type": 3,
    "bmc_username": "root",
    "bmc_address": "128.224.64.180",
    "bmc_password": PASSWORD,
    "persistent_size": 30000,
    "hw_settle": 0,
    "extra_boot_params": "console=ttyS0,115200",
    "nexthop_gateway": "10.10.10.1",
    "network_address": "128.224.0.0",
    "network_mask": 16,
    "rd.net.timeout.ipv6dad": 30,
    "rvmc_debug_level": 1,
    "boot_device": "/dev/disk/by-path/pci-0000:00:1f.2-ata-1.0",
    "software_version": "24.09",
}
DROP = object()


def check(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    values = {**GOOD, **(changes or {})}
    return validate_install_values({k: v for k, v in values.items() if v is not DROP}, RELEASE)


def refused(changes: dict[str, Any]) -> str:
    with pytest.raises(InvalidInput) as caught:
        check(changes)
    return caught.value.message


def test_good_values_return_a_cleaned_copy() -> None:
    original = {**GOOD, "bmc_address": " 128.224.64.180 ", "bmc_username": " root ", "hw_settle": "5"}
    cleaned = validate_install_values(original, RELEASE)
    assert cleaned == {**GOOD, "hw_settle": 5}
    assert original["bmc_username"] == " root "  # the input is not modified


def test_ipv6_addresses_are_compressed() -> None:
    ipv6 = {"bootstrap_address": "FD00:0::12", "bootstrap_address_prefix": 64, "bmc_address": "fd00::0:99",
            "nexthop_gateway": "fd00::1", "network_address": "fd01:0::", "network_mask": 64}
    cleaned = check(ipv6)
    assert (cleaned["bootstrap_address"], cleaned["bmc_address"], cleaned["network_address"]) == (
        "fd00::12", "fd00::99", "fd01::",
    )


def test_software_version_is_filled_in_from_the_release() -> None:
    assert check({"software_version": DROP})["software_version"] == RELEASE


@pytest.mark.parametrize("version", ["22.12", 24.1, None])
def test_software_version_must_match_release(version: Any) -> None:
    assert "software_version" in refused({"software_version": version})


def test_yaml_float_software_version_matches() -> None:
    assert check({"software_version": 24.09})["software_version"] == RELEASE


def test_secret_keys() -> None:
    assert [key for key in GOOD if is_secret_key(key)] == ["bmc_password"]


@pytest.mark.parametrize("password", [DROP, None, ""])
def test_bmc_password_required(password: Any) -> None:
    message = refused({"bmc_password": password})
    assert "bmc_password" in message and "base64" in message


@pytest.mark.parametrize("password", ["not base64!", "abc", "gA==", 1234, ["x"]])
def test_bmc_password_must_be_base64(password: Any) -> None:
    message = refused({"bmc_password": password})
    assert "bmc_password" in message and "base64" in message


@pytest.mark.parametrize("key", [k for k in MANDATORY_INSTALL_KEYS if k != "bmc_password"])
def test_mandatory_value_missing(key: str) -> None:
    assert refused({key: DROP}) == f"Missing mandatory install value: {key}."


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"install_type": 6}, "install_type"),
        ({"install_type": -1}, "install_type"),
        ({"install_type": True}, "install_type"),
        ({"install_type": "three"}, "install_type"),
        ({"bootstrap_interface": 7}, "bootstrap_interface"),
        ({"bmc_username": ["root"]}, "bmc_username"),
        ({"bootstrap_address": "10.10.10.300"}, "bootstrap_address"),
        ({"bootstrap_address_prefix": 33}, "bootstrap_address_prefix"),
        ({"bmc_address": "fd00::1"}, "bmc_address"),
        ({"bmc_address": "bmc.example.com"}, "bmc_address"),
        ({"nexthop_gateway": "fd00::1"}, "nexthop_gateway"),
        ({"nexthop_gateway": None}, "nexthop_gateway"),
        ({"nexthop_gateway": DROP}, "nexthop_gateway"),
        ({"network_mask": DROP}, "network_mask"),
        ({"network_mask": 40}, "network_address"),
        ({"network_mask": 10**5000}, "network_mask"),
        ({"network_address": "128.224.1.0"}, "network_address"),
        ({"network_address": "fd01::", "network_mask": 64}, "network_address"),
        ({"persistent_size": 29999}, "persistent_size"),
        ({"persistent_size": 30000.5}, "persistent_size"),
        ({"persistent_size": "lots"}, "persistent_size"),
        ({"hw_settle": -1}, "hw_settle"),
        ({"extra_boot_params": ""}, "extra_boot_params"),
        ({"extra_boot_params": "a=1 b=2"}, "extra_boot_params"),
        ({"rd.net.timeout.ipv6dad": 0}, "rd.net.timeout.ipv6dad"),
        ({"rd.net.timeout.ipv6dad": "soon"}, "rd.net.timeout.ipv6dad"),
        ({"rvmc_debug_level": 5}, "rvmc_debug_level"),
    ],
)
def test_rule_refuses_bad_value(changes: dict[str, Any], field: str) -> None:
    assert field in refused(changes)


def test_dotted_network_mask_accepted() -> None:
    assert check({"network_mask": "255.255.0.0"})["network_mask"] == "255.255.0.0"


def test_optional_values_may_be_absent() -> None:
    optional = [k for k in GOOD if k not in MANDATORY_INSTALL_KEYS]
    cleaned = check({key: DROP for key in optional})
    assert set(cleaned) == {*MANDATORY_INSTALL_KEYS, "software_version"}


@pytest.mark.parametrize("values", [None, "bmc_password: x", ["a"], 3])
def test_values_must_be_a_mapping(values: Any) -> None:
    with pytest.raises(InvalidInput, match="install_values"):
        validate_install_values(values, RELEASE)


JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
    st.lists(st.integers(), max_size=2), st.ip_addresses().map(str), st.just(PASSWORD),
)
KEYS = st.sampled_from([*GOOD])


@given(values=st.one_of(JUNK, st.dictionaries(KEYS, JUNK)))
def test_random_junk_only_raises_invalid_input(values: Any) -> None:
    try:
        validate_install_values(values, RELEASE)
    except InvalidInput:
        pass


@given(changes=st.dictionaries(KEYS, JUNK, max_size=3))
def test_nearly_valid_values_only_raise_invalid_input(changes: dict[str, Any]) -> None:
    try:
        assert isinstance(validate_install_values({**GOOD, **changes}, RELEASE), dict)
    except InvalidInput as error:
        assert error.message.endswith(".")
