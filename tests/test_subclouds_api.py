"""Scenario tests of /v1.0/subclouds and /v1.0/alarms through the HTTP API, on SQLite and PostgreSQL.

Every refused request is checked three ways: the status code, a meaningful word of the
faultstring, and that the subcloud list and alarm summary are exactly as they were before.
Every accepted request is checked by reading the stored result back.

References: /work/shared/spec/reference/lifecycle-audit.md (sections cited per group of tests)
and /work/shared/spec/reference/api.md.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import datetime
from http import HTTPStatus
from typing import Any, Callable

import httpx
import pytest
import yaml

from conftest import Api, add_form, bootstrap_values

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

SUBCLOUDS = "/v1.0/subclouds"
ALARMS = "/v1.0/alarms"

SYSADMIN_PASSWORD = "St8rlingX*"  # what conftest.add_form sends, base64-encoded
SYSADMIN_PASSWORD_B64 = base64.b64encode(SYSADMIN_PASSWORD.encode()).decode()
BMC_PASSWORD = "Bmc-Secret-42"
BMC_PASSWORD_B64 = base64.b64encode(BMC_PASSWORD.encode()).decode()

ENDPOINT_TYPES = {"platform", "identity", "dc-cert", "firmware", "kubernetes", "kube-rootca", "software"}

# §1.7: the keys of a subcloud, in order.
SUBCLOUD_KEYS = [
    "id", "name", "description", "location", "software-version", "management-state",
    "availability-status", "deploy-status", "backup-status", "backup-datetime", "error-description",
    "region-name", "management-subnet", "management-start-ip", "management-end-ip",
    "management-gateway-ip", "openstack-installed", "prestage-status", "prestage-versions",
    "systemcontroller-gateway-ip", "data_install", "data_upgrade", "created-at", "updated-at",
    "group_id", "peer_group_id", "rehome_data",
    "deploy-progress",  # dcman's addition
]


def url(ref: str | int) -> str:
    return f"{SUBCLOUDS}/{ref}"


def prefix_of(values: dict[str, Any]) -> str:
    """The first three octets of the management subnet bootstrap_values() gave these values."""
    return values["management_subnet"].rsplit(".", 1)[0]


def assert_error(response: httpx.Response, status: int, *words: str) -> str:
    """The reference error body with `status`, whose faultstring holds every one of `words`."""
    assert response.status_code == status, response.text
    error = response.json()["error_message"]
    assert error["code"] == status
    assert error["title"] == HTTPStatus(status).phrase
    fault = error["faultstring"]
    for word in words:
        assert word.lower() in fault.lower(), f"{word!r} not in {fault!r}"
    return fault


async def snapshot(api: Api) -> dict[str, Any]:
    """Everything a refused request must leave alone: the full subcloud list and alarm summary."""
    subclouds = await api.subclouds()
    alarms = await api.get(ALARMS)
    assert alarms.status_code == 200, alarms.text
    return {"subclouds": subclouds, "alarms": alarms.json()}


async def assert_unchanged(api: Api, before: dict[str, Any]) -> None:
    assert await snapshot(api) == before


async def show(api: Api, ref: str | int) -> dict[str, Any]:
    response = await api.get(url(ref))
    assert response.status_code == 200, response.text
    return response.json()


async def post_add(
    api: Api,
    name: str,
    values: dict[str, Any] | None = None,
    *,
    drop: tuple[str, ...] = (),
    bootstrap_text: str | None = None,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> httpx.Response:
    """POST /v1.0/subclouds as the dcmanager client sends it; `drop` removes parts of the form,
    `bootstrap_text` replaces the bootstrap_values file by raw text."""
    data, files = add_form(name, values, **fields)
    if bootstrap_text is not None:
        files["bootstrap_values"] = ("bootstrap.yaml", bootstrap_text.encode(), "application/x-yaml")
    for key in drop:
        data.pop(key, None)
        files.pop(key, None)
    kw: dict[str, Any] = {"data": data, "files": files}
    if headers is not None:
        kw["headers"] = headers
    return await api.post(SUBCLOUDS, **kw)


async def assert_add_refused(api: Api, status: int, words: tuple[str, ...], name: str = "edge-new",
                             values: dict[str, Any] | None = None, **kw: Any) -> str:
    """Send a bad add next to an existing subcloud; check the refusal and that nothing changed."""
    before = await snapshot(api)
    fault = assert_error(await post_add(api, name, values, **kw), status, *words)
    await assert_unchanged(api, before)
    return fault


async def patch_refused(api: Api, ref: str | int, body: Any, status: int, *words: str) -> str:
    """PATCH a subcloud with a JSON body that must be refused; nothing may change."""
    before = await snapshot(api)
    fault = assert_error(await api.patch(url(ref), json=body), status, *words)
    await assert_unchanged(api, before)
    return fault


async def patch_ok(api: Api, ref: str | int, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.patch(url(ref), json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def delete_refused(api: Api, ref: str | int, status: int, *words: str) -> None:
    before = await snapshot(api)
    assert_error(await api.delete(url(ref)), status, *words)
    await assert_unchanged(api, before)


async def deployed(api: Api, name: str, **state: Any) -> dict[str, Any]:
    """A subcloud whose deploy finished (complete, online unless told otherwise), as the audit leaves it."""
    await api.add_subcloud(name)
    await api.set_state(name, **{"deploy_status": "complete", "availability_status": "online", **state})
    return await show(api, name)


async def create_group(api: Api, name: str) -> dict[str, Any]:
    body = {"name": name, "description": f"{name} group", "update_apply_type": "parallel",
            "max_parallel_subclouds": 2}
    response = await api.post("/v1.0/subcloud-groups", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def set_endpoint_status(api: Api, name: str, endpoint: str, status: str) -> None:
    """Set one endpoint's sync status in the database, as the audit or dcorch would report it."""
    from sqlalchemy import select, update

    from dcman.db.tables import subcloud_status, subclouds

    async with api.ctx.engine.begin() as conn:
        subcloud_id = (await conn.execute(select(subclouds.c.id).where(subclouds.c.name == name))).scalar_one()
        await conn.execute(
            update(subcloud_status)
            .where(subcloud_status.c.subcloud_id == subcloud_id, subcloud_status.c.endpoint_type == endpoint)
            .values(sync_status=status)
        )


def endpoint_map(subcloud: dict[str, Any]) -> dict[str, str]:
    return {e["endpoint_type"]: e["sync_status"] for e in subcloud["endpoint_sync_status"]}


def install_values(**overrides: Any) -> str:
    values = {
        "bootstrap_interface": "eno1",
        "bootstrap_address": "10.10.10.12",
        "bootstrap_address_prefix": 24,
        "install_type": 3,
        "bmc_username": "root",
        "bmc_address": "10.10.10.20",
        "bmc_password": BMC_PASSWORD_B64,
    }
    values.update(overrides)
    return yaml.safe_dump({k: v for k, v in values.items() if v is not None})


def assert_no_secret(text: str) -> None:
    for secret in (SYSADMIN_PASSWORD, SYSADMIN_PASSWORD_B64, BMC_PASSWORD, BMC_PASSWORD_B64):
        assert secret not in text, f"a password ({secret!r}) leaked into a response"


# ---------------------------------------------------------------------------------------------
# add: stored result (§2.1 rules 6, 10; §1.1 defaults; §2.10 region names; §1.2 endpoint rows)
# ---------------------------------------------------------------------------------------------


async def test_add_stores_a_new_subcloud_unmanaged_offline_and_not_deployed(api: Api) -> None:
    values = bootstrap_values("edge1")
    p = prefix_of(values)
    added = await api.add_subcloud("edge1", values, description="Ottawa site", location="YOW")

    stored = await show(api, "edge1")
    assert stored == added
    assert stored["name"] == "edge1"
    assert stored["description"] == "Ottawa site"
    assert stored["location"] == "YOW"
    assert stored["management-subnet"] == f"{p}.0/24"
    assert stored["management-start-ip"] == f"{p}.2"
    assert stored["management-end-ip"] == f"{p}.50"
    assert stored["management-gateway-ip"] == f"{p}.1"
    assert stored["systemcontroller-gateway-ip"] == "127.0.5.1"
    region = stored["region-name"]
    assert len(region) == 32 and all(ch in "0123456789abcdef" for ch in region)
    assert stored["deploy-status"] == "not-deployed"
    assert stored["management-state"] == "unmanaged"
    assert stored["availability-status"] == "offline"
    assert stored["error-description"] == "No errors present"
    assert stored["group_id"] == 1
    assert stored["peer_group_id"] is None
    assert stored["software-version"] == "24.09"
    assert stored["openstack-installed"] is False
    assert stored["data_install"] is None
    assert endpoint_map(stored) == {endpoint: "unknown" for endpoint in ENDPOINT_TYPES}
    assert len(stored["endpoint_sync_status"]) == 7


async def test_add_answers_with_the_reference_keys_in_order(api: Api) -> None:
    added = await api.add_subcloud("edge1")
    assert list(added) == SUBCLOUD_KEYS + ["endpoint_sync_status"]
    (listed,) = await api.subclouds()
    assert list(listed) == SUBCLOUD_KEYS + ["sync_status", "endpoint_sync_status"]


async def test_two_subclouds_get_different_region_names(api: Api) -> None:
    first = await api.add_subcloud("edge1")
    second = await api.add_subcloud("edge2")
    assert first["region-name"] != second["region-name"]
    assert first["id"] != second["id"]


async def test_add_stores_the_requested_release(api: Api) -> None:
    added = await api.add_subcloud("edge1", release="22.12")
    assert added["software-version"] == "22.12"
    assert (await show(api, "edge1"))["software-version"] == "22.12"


async def test_add_never_returns_a_password(api: Api) -> None:
    response = await post_add(api, "edge1", install_values=install_values())
    assert response.status_code == 200, response.text
    assert_no_secret(response.text)
    for path in (SUBCLOUDS, url("edge1"), url("edge1") + "/detail", ALARMS):
        read = await api.get(path)
        assert read.status_code == 200, read.text
        assert_no_secret(read.text)


async def test_add_into_a_group_named_by_name(api: Api) -> None:
    group = await create_group(api, "edge-group")
    added = await api.add_subcloud("edge1", group_id="edge-group")
    assert added["group_id"] == group["id"]
    assert (await show(api, "edge1"))["group_id"] == group["id"]


async def test_add_into_a_group_named_by_id(api: Api) -> None:
    group = await create_group(api, "edge-group")
    added = await api.add_subcloud("edge1", group_id=str(group["id"]))
    assert (await show(api, "edge1"))["group_id"] == group["id"] == added["group_id"]


async def test_add_accepts_a_description_of_exactly_255_characters(api: Api) -> None:
    await api.add_subcloud("edge1", description="d" * 255)
    assert (await show(api, "edge1"))["description"] == "d" * 255


async def test_add_takes_description_and_location_from_the_bootstrap_values_file(api: Api) -> None:
    """The dcmanager client has no options for them: they come in the values file, as the
    reference reads them; a form field wins over the file."""
    await api.add_subcloud("edge1", bootstrap_values("edge1", description="Ottawa site", location="YOW"))
    stored = await show(api, "edge1")
    assert (stored["description"], stored["location"]) == ("Ottawa site", "YOW")
    await api.add_subcloud("edge2", bootstrap_values("edge2", description="From the file"), description="From the form")
    assert (await show(api, "edge2"))["description"] == "From the form"


async def test_add_without_description_or_location_stores_null_as_the_reference(api: Api) -> None:
    await api.add_subcloud("edge1")
    stored = await show(api, "edge1")
    assert (stored["description"], stored["location"]) == (None, None)


async def test_add_refused_for_a_description_in_the_values_file_that_is_not_text(api: Api) -> None:
    data, files = add_form("edge1", bootstrap_values("edge1", location=["not", "text"]))
    assert_error(await api.post(SUBCLOUDS, data=data, files=files), 400, "location")
    assert await api.subclouds() == []


async def test_a_deleted_subclouds_id_never_names_another(api: Api) -> None:
    """SQLite would hand the highest id out again after its delete without AUTOINCREMENT."""
    await api.add_subcloud("edge1")
    second = await api.add_subcloud("edge2")
    assert (await api.delete(url("edge2"))).status_code == 200
    third = await api.add_subcloud("edge3")
    assert third["id"] > second["id"]


async def test_add_with_admin_network_stores_the_admin_values_as_management_columns(api: Api) -> None:
    # §2.1 rule 10: admin values take precedence; rule 5: admin gateway replaces the management gateway.
    values = bootstrap_values(
        "edge1", management_gateway_address=None, admin_subnet="192.168.77.0/24",
        admin_start_address="192.168.77.2", admin_end_address="192.168.77.20",
        admin_gateway_address="192.168.77.1",
    )
    await api.add_subcloud("edge1", values)
    stored = await show(api, "edge1")
    assert stored["management-subnet"] == "192.168.77.0/24"
    assert stored["management-start-ip"] == "192.168.77.2"
    assert stored["management-end-ip"] == "192.168.77.20"
    assert stored["management-gateway-ip"] == "192.168.77.1"


async def test_add_stores_ipv6_management_addresses_normalised(api: Api) -> None:
    values = bootstrap_values(
        "edge1", management_subnet="FD01:0001:0000:0000::/64", management_start_address="fd01:1::0002",
        management_end_address="FD01:1:0:0::0032", management_gateway_address="fd01:0001::1",
    )
    await api.add_subcloud("edge1", values)
    stored = await show(api, "edge1")
    assert stored["management-subnet"] == "fd01:1::/64"
    assert stored["management-start-ip"] == "fd01:1::2"
    assert stored["management-end-ip"] == "fd01:1::32"
    assert stored["management-gateway-ip"] == "fd01:1::1"


async def test_add_stores_the_subcloud_name_without_surrounding_blanks(api: Api) -> None:
    await api.add_subcloud("edge1", bootstrap_values("  edge1  "))
    assert (await show(api, "edge1"))["name"] == "edge1"


# ---------------------------------------------------------------------------------------------
# add: refusals of the request itself (§2.1 rules 1-7, N1, N10, N11)
# ---------------------------------------------------------------------------------------------


async def test_add_refused_for_a_group_that_does_not_exist(api: Api) -> None:
    await api.add_subcloud("existing")
    await assert_add_refused(api, 400, ("group",), group_id="no-such-group")
    await assert_add_refused(api, 400, ("group",), group_id="42")


async def test_add_refused_for_a_duplicate_name(api: Api) -> None:
    await api.add_subcloud("edge1")
    await assert_add_refused(api, 409, ("edge1", "exists"), name="edge1")


async def test_add_refused_for_a_name_that_is_another_subclouds_region_name(api: Api) -> None:
    region = (await api.add_subcloud("edge1"))["region-name"]
    await assert_add_refused(api, 409, ("exists",), name=region)


@pytest.mark.parametrize(("name", "word"), [
    ("12345", "digits"),
    ("RegionOne", "reserved"),
    ("SystemController", "reserved"),
    ("has space", "spaces"),
    ("a/b", "/"),
    ("x" * 256, "255"),
])
async def test_add_refused_for_a_forbidden_name(api: Api, name: str, word: str) -> None:
    await api.add_subcloud("existing")
    await assert_add_refused(api, 400, (word,), name=name)


async def test_add_refused_without_a_name_in_the_bootstrap_values(api: Api) -> None:
    await api.add_subcloud("existing")
    values = bootstrap_values("edge1")
    del values["name"]
    await assert_add_refused(api, 400, ("name",), values=values)


async def test_add_refused_without_bootstrap_values(api: Api) -> None:
    await api.add_subcloud("existing")
    await assert_add_refused(api, 400, ("bootstrap_values", "required"), drop=("bootstrap_values",))


@pytest.mark.parametrize(("text", "word"), [
    ("- just\n- a list\n", "mapping"),
    ("just a string\n", "mapping"),
    ("", "mapping"),
    ("name: [unclosed\n", "YAML"),
    ("name: edge1\n  bad: indent\n", "YAML"),
    ("a: &x [1, 2]\nb: *x\n", "aliases"),
], ids=["list", "scalar", "empty", "unclosed", "bad-indent", "alias"])
async def test_add_refused_when_bootstrap_values_are_not_a_yaml_mapping(api: Api, text: str, word: str) -> None:
    await api.add_subcloud("existing")
    await assert_add_refused(api, 400, ("bootstrap_values", word), bootstrap_text=text)


async def test_add_refused_when_the_deploy_config_is_not_a_yaml_mapping(api: Api) -> None:
    await api.add_subcloud("existing")
    await assert_add_refused(api, 400, ("deploy_config",), deploy_config="- a\n- b\n")


@pytest.mark.parametrize(("password", "word"), [
    (None, "required"),
    ("", "required"),
    ("not base64!", "base64"),
    ("U3Q4cmxpbmdYKg", "base64"),  # padding missing
    ("/w==", "base64"),  # decodes to bytes that are not UTF-8
], ids=["missing", "empty", "junk", "unpadded", "not-utf8"])
async def test_add_refused_for_a_missing_or_undecodable_sysadmin_password(api: Api, password: str | None,
                                                                           word: str) -> None:
    await api.add_subcloud("existing")
    if password is None:
        await assert_add_refused(api, 400, ("sysadmin_password", word), drop=("sysadmin_password",))
    else:
        await assert_add_refused(api, 400, ("sysadmin_password", word), sysadmin_password=password)


@pytest.mark.parametrize("address", [None, "", "not-an-ip", "10.10.10.300", "10.10.10.0/24"])
async def test_add_refused_for_a_bad_bootstrap_address(api: Api, address: str | None) -> None:
    await api.add_subcloud("existing")
    if address is None:
        await assert_add_refused(api, 400, ("bootstrap-address",), drop=("bootstrap-address",))
    else:
        await assert_add_refused(api, 400, ("bootstrap-address",), **{"bootstrap-address": address})


@pytest.mark.parametrize("release", ["21.05", "24.9", "latest"])
async def test_add_refused_for_an_unsupported_release(api: Api, release: str) -> None:
    await api.add_subcloud("existing")
    await assert_add_refused(api, 400, ("release", "supported"), release=release)


@pytest.mark.parametrize(("option", "value", "status", "word"), [
    ("secondary", "true", 403, "secondary"),  # only a peer site's sync may add one
    ("migrate", "perhaps", 400, "true or false"),
])
async def test_add_refused_for_geo_redundancy_options(api: Api, option: str, value: str, status: int,
                                                      word: str) -> None:
    await api.add_subcloud("existing")
    await assert_add_refused(api, status, (word,), **{option: value})


async def test_add_with_migrate_adopts_the_subcloud_by_a_rehome_alone(api: Api) -> None:
    added = await api.add_subcloud("edge1", migrate="true")
    assert added["deploy-status"] == "pre-rehome"


async def test_add_accepts_migrate_false(api: Api) -> None:
    added = await api.add_subcloud("edge1", migrate="false")
    assert added["deploy-status"] == "not-deployed"


@pytest.mark.parametrize("field", ["bootstrap_values", "install_values", "deploy_config"])
async def test_add_refused_when_a_file_field_arrives_as_a_json_value(api: Api, field: str) -> None:
    # A JSON add must carry the files as YAML text; anything else is a 400, not a server error.
    await api.add_subcloud("existing")
    body: dict[str, Any] = {"bootstrap_values": yaml.safe_dump(bootstrap_values("edge-new")),
                            "bootstrap-address": "10.10.10.12", "sysadmin_password": SYSADMIN_PASSWORD_B64}
    body[field] = {"name": "edge-new"}
    before = await snapshot(api)
    assert_error(await api.post(SUBCLOUDS, json=body), 400, field)
    await assert_unchanged(api, before)


@pytest.mark.parametrize("field", ["description", "location"])
async def test_add_refused_for_free_text_over_255_characters(api: Api, field: str) -> None:
    await api.add_subcloud("existing")
    await assert_add_refused(api, 400, (field, "255"), **{field: "x" * 256})


# ---------------------------------------------------------------------------------------------
# add: network rules (§2.2 N2, N4-N9, with the [CUR] range-overlap check; §2.1 rule 5)
# ---------------------------------------------------------------------------------------------

ADMIN = {"admin_subnet": "192.168.60.0/24", "admin_start_address": "192.168.60.2",
         "admin_end_address": "192.168.60.20", "admin_gateway_address": "192.168.60.1"}

BAD_NETWORKS: list[tuple[str, Callable[[str], dict[str, Any]], str]] = [
    ("N2-subnet-too-small", lambda p: {"management_subnet": f"{p}.0/30"}, "too small"),
    ("N2-not-a-subnet", lambda p: {"management_subnet": "not-a-subnet"}, "not a valid IP subnet"),
    ("N2-host-bits", lambda p: {"management_subnet": f"{p}.7/24"}, "host bits"),
    ("N2-ipv6-shorter-than-64", lambda p: {"management_subnet": "fd01::/48", "management_start_address": "fd01::2",
                                           "management_end_address": "fd01::32",
                                           "management_gateway_address": "fd01::1"}, "/64"),
    ("N2-dual-stack", lambda p: {"management_subnet": f"{p}.0/24,fd01::/64"}, "dual-stack"),
    ("N4-start-not-an-ip", lambda p: {"management_start_address": "abc"}, "not a valid IP address"),
    ("N4-start-outside-subnet", lambda p: {"management_start_address": "192.0.2.5"}, "is not in"),
    ("N4-start-other-ip-version", lambda p: {"management_start_address": "fd01::2"}, "IPv6"),
    ("N4-start-network-address", lambda p: {"management_start_address": f"{p}.0"}, "network address"),
    ("N4-end-broadcast", lambda p: {"management_end_address": f"{p}.255"}, "broadcast"),
    ("N4-end-before-start", lambda p: {"management_start_address": f"{p}.50", "management_end_address": f"{p}.2"},
     "must not be lower"),
    ("N4-range-of-3", lambda p: {"management_end_address": f"{p}.4"}, "at least 4"),
    ("N5-gateway-missing", lambda p: {"management_gateway_address": None}, "management_gateway_address"),
    ("N5-gateway-outside-subnet", lambda p: {"management_gateway_address": "192.0.2.1"}, "is not in"),
    ("N5-gateway-broadcast", lambda p: {"management_gateway_address": f"{p}.255"}, "broadcast"),
    ("N7-gateway-inside-range", lambda p: {"management_gateway_address": f"{p}.10"}, "outside"),
    ("N6-admin-subnet-alone", lambda p: {"admin_subnet": "192.168.60.0/24"}, "admin"),
    ("N6-admin-gateway-missing", lambda p: {**ADMIN, "admin_gateway_address": None}, "admin_gateway_address"),
    ("N6-admin-subnet-too-small", lambda p: {**ADMIN, "admin_subnet": "192.168.60.0/30",
                                             "admin_start_address": "192.168.60.1",
                                             "admin_end_address": "192.168.60.2"}, "too small"),
    ("N6-admin-range-of-1", lambda p: {**ADMIN, "admin_end_address": "192.168.60.2"}, "at least 2"),
    ("N6-admin-gateway-inside-range", lambda p: {**ADMIN, "admin_gateway_address": "192.168.60.5"}, "outside"),
    ("N6-admin-start-outside-subnet", lambda p: {**ADMIN, "admin_start_address": "192.168.61.2"}, "is not in"),
    ("N8-sc-gateway-outside-sc-subnet", lambda p: {"systemcontroller_gateway_address": "10.20.0.1"},
     "system controller subnet"),
    ("N8-sc-gateway-network-address", lambda p: {"systemcontroller_gateway_address": "127.0.0.0"},
     "network address"),
    ("N8-sc-gateway-broadcast", lambda p: {"systemcontroller_gateway_address": "127.0.255.255"}, "broadcast"),
    ("N9-oam-subnet-too-small", lambda p: {"external_oam_subnet": "10.10.10.0/31"}, "too small"),
    ("N9-oam-gateway-outside", lambda p: {"external_oam_gateway_address": "10.10.11.1"},
     "external_oam_gateway_address"),
    ("N9-oam-floating-broadcast", lambda p: {"external_oam_floating_address": "10.10.10.255"}, "broadcast"),
    ("N9-oam-floating-not-an-ip", lambda p: {"external_oam_floating_address": "ten"}, "not a valid IP address"),
    ("system-mode-unknown", lambda p: {"system_mode": "triplex"}, "system_mode"),
    ("value-not-a-string", lambda p: {"management_subnet": 42}, "must be a string"),
]


@pytest.mark.parametrize(("overrides", "word"), [(case[1], case[2]) for case in BAD_NETWORKS],
                         ids=[case[0] for case in BAD_NETWORKS])
async def test_add_refused_for_a_bad_network(api: Api, overrides: Callable[[str], dict[str, Any]],
                                             word: str) -> None:
    await api.add_subcloud("existing")
    values = bootstrap_values("edge-new")
    values.update(overrides(prefix_of(values)))
    values = {k: v for k, v in values.items() if v is not None}
    await assert_add_refused(api, 400, (word,), values=values)


@pytest.mark.parametrize("key", [
    "system_mode", "management_subnet", "management_start_address", "management_end_address",
    "systemcontroller_gateway_address", "external_oam_subnet", "external_oam_gateway_address",
    "external_oam_floating_address",
])
async def test_add_refused_without_a_required_bootstrap_value(api: Api, key: str) -> None:
    await api.add_subcloud("existing")
    await assert_add_refused(api, 400, ("missing", key), values=bootstrap_values("edge-new", **{key: None}))


async def test_add_refused_when_the_management_range_overlaps_another_subclouds(api: Api) -> None:
    first = bootstrap_values("edge1")
    p = prefix_of(first)
    await api.add_subcloud("edge1", first)
    overlapping = bootstrap_values("edge2", management_subnet=f"{p}.0/24", management_start_address=f"{p}.45",
                                   management_end_address=f"{p}.55", management_gateway_address=f"{p}.1")
    fault = await assert_add_refused(api, 400, ("overlaps", "edge1"), name="edge2", values=overlapping)
    assert f"{p}.2-{p}.50" in fault


async def test_add_accepts_a_range_beside_another_subclouds_in_the_same_subnet(api: Api) -> None:
    first = bootstrap_values("edge1")
    p = prefix_of(first)
    await api.add_subcloud("edge1", first)
    beside = bootstrap_values("edge2", management_subnet=f"{p}.0/24", management_start_address=f"{p}.51",
                              management_end_address=f"{p}.100", management_gateway_address=f"{p}.1")
    await api.add_subcloud("edge2", beside)
    stored = await show(api, "edge2")
    assert (stored["management-subnet"], stored["management-start-ip"]) == (f"{p}.0/24", f"{p}.51")


async def test_add_refused_when_the_oam_subnet_overlaps_another_subclouds_management_subnet(api: Api) -> None:
    first = bootstrap_values("edge1")
    p = prefix_of(first)
    await api.add_subcloud("edge1", first)
    clashing = bootstrap_values("edge2", external_oam_subnet=f"{p}.0/24", external_oam_gateway_address=f"{p}.1",
                                external_oam_floating_address=f"{p}.12")
    await assert_add_refused(api, 400, ("external_oam_subnet", "edge1"), name="edge2", values=clashing)


async def test_concurrent_adds_with_the_same_name_accept_exactly_one(api: Api) -> None:
    # §2.2 N11: the name stays unique even when two adds race.
    for attempt in range(5):
        name = f"edge{attempt}"
        responses = await asyncio.gather(post_add(api, name), post_add(api, name))
        assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    assert [s["name"] for s in await api.subclouds()] == [f"edge{attempt}" for attempt in range(5)]


async def test_concurrent_adds_with_overlapping_ranges_accept_exactly_one(api: Api) -> None:
    # §2.1: the reference serialises every mutating subcloud call, so the overlap check cannot be raced
    # (a regression test: PostgreSQL used to accept both).
    for attempt in range(5):
        first = bootstrap_values(f"edge{attempt}a")
        p = prefix_of(first)
        second = bootstrap_values(f"edge{attempt}b", management_subnet=f"{p}.0/24",
                                  management_start_address=f"{p}.45", management_end_address=f"{p}.55",
                                  management_gateway_address=f"{p}.1")
        responses = await asyncio.gather(post_add(api, "a", first), post_add(api, "b", second))
        assert sorted(r.status_code for r in responses) == [200, 400], [r.text for r in responses]
        assert_error(next(r for r in responses if r.status_code == 400), 400, "overlaps")
    assert len(await api.subclouds()) == 5


# ---------------------------------------------------------------------------------------------
# add: install values (§2.2 "Install values"; §1.1 data_install)
# ---------------------------------------------------------------------------------------------


async def test_add_stores_install_values_without_the_bmc_password(api: Api) -> None:
    added = await api.add_subcloud("edge1", install_values=install_values())
    stored = await show(api, "edge1")
    assert stored["data_install"] == added["data_install"]
    assert isinstance(stored["data_install"], str)  # JSON text, as the reference sends it
    data_install = json.loads(stored["data_install"])
    assert "bmc_password" not in data_install
    assert data_install["bmc_username"] == "root"
    assert data_install["bmc_address"] == "10.10.10.20"
    assert data_install["bootstrap_interface"] == "eno1"
    assert data_install["install_type"] == 3
    assert data_install["software_version"] == "24.09"


async def test_add_takes_the_bmc_password_from_the_form(api: Api) -> None:
    await api.add_subcloud("edge1", install_values=install_values(bmc_password=None), bmc_password=BMC_PASSWORD_B64)
    data_install = json.loads((await show(api, "edge1"))["data_install"])
    assert data_install["bmc_username"] == "root"
    assert "bmc_password" not in data_install


async def test_add_install_values_follow_the_requested_release(api: Api) -> None:
    await api.add_subcloud("edge1", release="22.12", install_values=install_values(software_version="22.12"))
    stored = await show(api, "edge1")
    assert stored["software-version"] == json.loads(stored["data_install"])["software_version"] == "22.12"


@pytest.mark.parametrize(("text", "word"), [
    (install_values(install_type=9), "install_type"),
    (install_values(install_type="fast"), "install_type"),
    (install_values(bmc_password=None), "bmc_password"),
    (install_values(bmc_password="not base64!"), "base64"),
    (install_values(bmc_address=None), "bmc_address"),
    (install_values(bmc_address="fd00::20"), "IPv6"),
    (install_values(bootstrap_address_prefix=33), "bootstrap_address_prefix"),
    (install_values(software_version="22.12"), "software_version"),
    (install_values(persistent_size=100), "persistent_size"),
    (install_values(rvmc_debug_level=7), "rvmc_debug_level"),
    (install_values(extra_boot_params="a b"), "extra_boot_params"),
    (install_values(network_address="10.10.10.0"), "nexthop_gateway"),
    ("- not\n- a mapping\n", "mapping"),
], ids=["install-type-9", "install-type-text", "bmc-password-missing", "bmc-password-not-base64",
        "bmc-address-missing", "bmc-address-ipv6", "prefix-33", "software-version-mismatch",
        "persistent-size-small", "rvmc-debug-level-7", "extra-boot-params-space", "network-address-alone",
        "not-a-mapping"])
async def test_add_refused_for_bad_install_values(api: Api, text: str, word: str) -> None:
    await api.add_subcloud("existing")
    await assert_add_refused(api, 400, (word,), install_values=text)


# ---------------------------------------------------------------------------------------------
# the deploy loop (§2.1 manager "create" step, §2.3.3: not-deployed → creating → create-complete)
# ---------------------------------------------------------------------------------------------


@pytest.mark.loops
async def test_a_new_subcloud_reaches_create_complete(api: Api) -> None:
    # The phased create stops there (a full add goes on to bootstrap: see test_deploy.py).
    data, files = add_form("edge1")
    assert (await api.post("/v1.0/phased-subcloud-deploy", data=data, files=files)).status_code == 200
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline:
        status = (await show(api, "edge1"))["deploy-status"]
        if status == "create-complete":
            break
        await asyncio.sleep(0.1)
    assert status == "create-complete"
    stored = await show(api, "edge1")
    assert stored["error-description"] == "No errors present"
    assert stored["management-state"] == "unmanaged"


# ---------------------------------------------------------------------------------------------
# list, show and detail (§1.7; api.md "Subclouds")
# ---------------------------------------------------------------------------------------------


async def test_a_new_site_lists_no_subclouds(api: Api) -> None:
    assert await api.subclouds() == []


async def test_the_list_holds_every_subcloud_in_order_with_its_sync_status(api: Api) -> None:
    await api.add_subcloud("edge1")
    await api.add_subcloud("edge2")
    listed = await api.subclouds()
    assert [s["name"] for s in listed] == ["edge1", "edge2"]
    for item in listed:
        assert item["sync_status"] == "unknown"
        assert endpoint_map(item) == {endpoint: "unknown" for endpoint in ENDPOINT_TYPES}


async def test_the_sync_status_roll_up_follows_the_endpoints(api: Api) -> None:
    await api.add_subcloud("edge1")
    for endpoint in ENDPOINT_TYPES:
        await set_endpoint_status(api, "edge1", endpoint, "in-sync")
    assert (await api.subclouds())[0]["sync_status"] == "in-sync"
    await set_endpoint_status(api, "edge1", "firmware", "out-of-sync")
    assert (await api.subclouds())[0]["sync_status"] == "out-of-sync"
    # dcman's deliberate choice (§7 quirk 6): in-sync mixed with unknown rolls up to unknown.
    await set_endpoint_status(api, "edge1", "firmware", "unknown")
    assert (await api.subclouds())[0]["sync_status"] == "unknown"


async def test_the_unpaged_lists_built_by_the_database_match_the_subclouds_as_shown(api: Api) -> None:
    """The unpaged list, a group's list and the alarm summary are built as JSON by the database
    (dcman/db/json_listing.py); each subcloud must read as show and the paged list give it."""
    await api.add_subcloud("edge1", description='Ünïcode "quoted" \\ back\ttab', location="YOW")
    await api.add_subcloud("edge2")
    await api.set_state("edge2", openstack_installed=True, backup_status="complete-central",
                        backup_datetime=datetime(2025, 1, 2, 3, 4, 5), updated_at=datetime(2025, 1, 2, 3, 4, 5, 120000))
    await set_endpoint_status(api, "edge1", "firmware", "out-of-sync")
    for endpoint in ENDPOINT_TYPES:
        await set_endpoint_status(api, "edge2", endpoint, "in-sync")
    unpaged = (await api.get(SUBCLOUDS)).json()["subclouds"]
    assert unpaged == (await api.get(SUBCLOUDS + "?limit=100")).json()["subclouds"]
    assert [s["sync_status"] for s in unpaged] == ["out-of-sync", "in-sync"]
    for listed in unpaged:
        assert {k: v for k, v in listed.items() if k != "sync_status"} == await show(api, listed["name"])
    in_group = (await api.get("/v1.0/subcloud-groups/Default/subclouds")).json()["subclouds"]
    assert in_group == [{k: v for k, v in s.items() if k not in ("sync_status", "endpoint_sync_status")}
                        for s in unpaged]
    summary = (await api.get(ALARMS)).json()["alarm_summary"]
    assert [row["region_name"] for row in summary] == ["edge1", "edge2"]
    assert set(summary[0]) == {"region_name", "uuid", "critical_alarms", "major_alarms", "minor_alarms",
                               "warnings", "cloud_status"}


async def test_show_by_id_and_by_name_give_the_same_subcloud(api: Api) -> None:
    await api.add_subcloud("edge1")
    added = await api.add_subcloud("edge2")
    by_id = await show(api, added["id"])
    by_name = await show(api, "edge2")
    assert by_id == by_name == added
    assert "sync_status" not in by_name  # §1.7: the roll-up is a list-only key
    listed = {s["name"]: s for s in await api.subclouds()}["edge2"]
    assert {k: v for k, v in listed.items() if k != "sync_status"} == by_name


async def test_detail_shows_the_oam_floating_ip_as_unavailable_while_offline(api: Api) -> None:
    await api.add_subcloud("edge1")
    response = await api.get(url("edge1") + "/detail")
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["oam_floating_ip"] == "unavailable"
    assert detail["deploy_config_sync_status"] == "unknown"
    assert detail["region_name"] == detail["region-name"]  # the spelling the dcmanager client reads here
    assert {k: v for k, v in detail.items() if k not in ("oam_floating_ip", "deploy_config_sync_status",
                                                         "region_name")} == await show(api, "edge1")


async def test_detail_shows_the_oam_floating_ip_while_online(api: Api) -> None:
    added = await deployed(api, "edge1")
    response = await api.get(url(added["id"]) + "/detail")
    assert response.status_code == 200, response.text
    assert response.json()["oam_floating_ip"] == "10.10.10.12"
    assert "deploy_config_sync_status" in response.json()


@pytest.mark.parametrize("method", ["show", "detail", "patch", "delete"])
@pytest.mark.parametrize("ref", ["nowhere", "9999"])
async def test_an_unknown_subcloud_is_not_found(api: Api, method: str, ref: str) -> None:
    await api.add_subcloud("edge1")
    before = await snapshot(api)
    if method == "show":
        response = await api.get(url(ref))
    elif method == "detail":
        response = await api.get(url(ref) + "/detail")
    elif method == "patch":
        response = await api.patch(url(ref), json={"description": "x"})
    else:
        response = await api.delete(url(ref))
    assert_error(response, 404, ref, "not found")
    await assert_unchanged(api, before)


@pytest.mark.parametrize("ref", ["2147483648", "99999999999"])
async def test_an_id_beyond_the_database_integer_range_is_not_found(api: Api, ref: str) -> None:
    # Regression (PostgreSQL): ids wider than the 32-bit id column used to end in a 500.
    await api.add_subcloud("edge1")
    before = await snapshot(api)
    assert_error(await api.get(url(ref)), 404, ref)
    assert_error(await api.patch(url(ref), json={"description": "x"}), 404, ref)
    assert_error(await api.delete(url(ref)), 404, ref)
    await assert_unchanged(api, before)


@pytest.mark.parametrize("ref", ["2147483648", "99999999999"])
async def test_a_group_id_beyond_the_database_integer_range_is_refused(api: Api, ref: str) -> None:
    await api.add_subcloud("edge1")
    await assert_add_refused(api, 400, ("group",), group_id=ref)
    await patch_refused(api, "edge1", {"group_id": ref}, 400, "group")


@pytest.mark.parametrize("where", ["bootstrap-name", "description-form", "patch-json", "url"])
async def test_a_nul_character_is_refused_on_both_databases(api: Api, where: str) -> None:
    # PostgreSQL cannot store NUL; every backend must refuse it the same way, with a 4xx.
    await api.add_subcloud("edge1")
    before = await snapshot(api)
    if where == "bootstrap-name":
        assert_error(await post_add(api, "edge\x002"), 400, "NUL")
    elif where == "description-form":
        assert_error(await post_add(api, "edge2", description="a\x00b"), 400, "NUL")
    elif where == "patch-json":
        assert_error(await api.patch(url("edge1"), json={"location": "a\x00b"}), 400, "NUL")
    else:
        assert_error(await api.get(url("edge1%00")), 404)
    await assert_unchanged(api, before)


# ---------------------------------------------------------------------------------------------
# manage / unmanage (§2.4; §8 acceptance scenario 10)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["enabled", "Managed", "", 1, True])
async def test_manage_refused_for_an_invalid_management_state(api: Api, value: Any) -> None:
    await deployed(api, "edge1")
    await patch_refused(api, "edge1", {"management-state": value}, 400, "management-state")


async def test_unmanage_refused_when_already_unmanaged(api: Api) -> None:
    await deployed(api, "edge1")
    await patch_refused(api, "edge1", {"management-state": "unmanaged"}, 422, "already unmanaged")


async def test_manage_refused_when_already_managed(api: Api) -> None:
    await deployed(api, "edge1", management_state="managed")
    await patch_refused(api, "edge1", {"management-state": "managed"}, 422, "already managed")


@pytest.mark.parametrize("deploy_status", ["not-deployed", "create-complete", "bootstrap-failed", "secondary"])
async def test_manage_refused_until_the_deploy_is_complete(api: Api, deploy_status: str) -> None:
    await deployed(api, "edge1", deploy_status=deploy_status)
    await patch_refused(api, "edge1", {"management-state": "managed"}, 422, "complete", deploy_status)


async def test_manage_refused_while_offline(api: Api) -> None:
    await deployed(api, "edge1", availability_status="offline")
    await patch_refused(api, "edge1", {"management-state": "managed"}, 422, "online")


@pytest.mark.parametrize("force", [True, "true"])
async def test_manage_offline_with_force_is_accepted(api: Api, force: Any) -> None:
    await deployed(api, "edge1", availability_status="offline")
    answer = await patch_ok(api, "edge1", {"management-state": "managed", "force": force})
    stored = await show(api, "edge1")
    assert stored == answer
    assert stored["management-state"] == "managed"
    assert stored["availability-status"] == "offline"
    assert stored["deploy-status"] == "complete"


async def test_force_also_skips_the_deploy_status_rule(api: Api) -> None:
    await deployed(api, "edge1", deploy_status="create-complete", availability_status="offline")
    await patch_ok(api, "edge1", {"management-state": "managed", "force": True})
    assert (await show(api, "edge1"))["management-state"] == "managed"


async def test_force_with_unmanage_is_refused(api: Api) -> None:
    await deployed(api, "edge1", management_state="managed")
    await patch_refused(api, "edge1", {"management-state": "unmanaged", "force": True}, 400, "force", "managed")


async def test_force_alone_is_refused(api: Api) -> None:
    await deployed(api, "edge1")
    await patch_refused(api, "edge1", {"force": True}, 400, "management-state")


async def test_force_must_be_a_boolean(api: Api) -> None:
    await deployed(api, "edge1", availability_status="offline")
    await patch_refused(api, "edge1", {"management-state": "managed", "force": "yes"}, 400, "force", "true or false")


async def test_manage_a_complete_online_subcloud(api: Api) -> None:
    before = await deployed(api, "edge1")
    answer = await patch_ok(api, "edge1", {"management-state": "managed"})
    stored = await show(api, "edge1")
    assert stored == answer
    assert stored["management-state"] == "managed"
    assert stored["updated-at"] is not None
    unchanged = ("name", "region-name", "deploy-status", "availability-status", "description", "group_id")
    assert {k: stored[k] for k in unchanged} == {k: before[k] for k in unchanged}


async def test_unmanage_a_managed_subcloud(api: Api) -> None:
    await deployed(api, "edge1", management_state="managed")
    answer = await patch_ok(api, "edge1", {"management-state": "unmanaged"})
    assert (await show(api, "edge1")) == answer
    assert answer["management-state"] == "unmanaged"


@pytest.mark.parametrize(("deploy_status", "dc_cert_after"), [
    ("complete", "in-sync"),  # cert-mon keeps auditing dc-cert of an online unmanaged subcloud
    ("rehome-pending", "unknown"),
    ("secondary", "unknown"),
])
async def test_unmanage_resets_the_endpoint_sync_statuses(api: Api, deploy_status: str, dc_cert_after: str) -> None:
    # §2.4 effects: every endpoint goes back to unknown, dc-cert too for secondary and rehome-pending.
    await deployed(api, "edge1", management_state="managed", deploy_status=deploy_status)
    for endpoint in ENDPOINT_TYPES:
        await set_endpoint_status(api, "edge1", endpoint, "in-sync")
    await patch_ok(api, "edge1", {"management-state": "unmanaged"})
    statuses = endpoint_map(await show(api, "edge1"))
    expected = {endpoint: "unknown" for endpoint in ENDPOINT_TYPES} | {"dc-cert": dc_cert_after}
    assert statuses == expected


@pytest.mark.parametrize("target", ["managed", "unmanaged"])
async def test_management_state_of_a_peer_group_member_is_refused(api: Api, target: str) -> None:
    current = "unmanaged" if target == "managed" else "managed"
    await deployed(api, "edge1", management_state=current, peer_group_id=1)
    await patch_refused(api, "edge1", {"management-state": target}, 422, "peer group")


@pytest.mark.parametrize("availability", ["offline", "online"])
async def test_managing_a_rehome_pending_subcloud_completes_its_deploy(api: Api, availability: str) -> None:
    # §2.4 rules 3 and 6: rehome-pending may be managed even offline, and becomes complete.
    await deployed(api, "edge1", deploy_status="rehome-pending", availability_status=availability)
    answer = await patch_ok(api, "edge1", {"management-state": "managed"})
    stored = await show(api, "edge1")
    assert stored == answer
    assert stored["management-state"] == "managed"
    assert stored["deploy-status"] == "complete"


# ---------------------------------------------------------------------------------------------
# update: description, location, group (§2.6; §2.7 rule 5 for group_id)
# ---------------------------------------------------------------------------------------------


async def test_update_description_and_location(api: Api) -> None:
    await api.add_subcloud("edge1", description="old", location="here")
    answer = await patch_ok(api, "edge1", {"description": "Ottawa site", "location": "YOW"})
    stored = await show(api, "edge1")
    assert stored == answer
    assert (stored["description"], stored["location"]) == ("Ottawa site", "YOW")


async def test_update_by_id(api: Api) -> None:
    added = await api.add_subcloud("edge1")
    await patch_ok(api, added["id"], {"location": "YOW"})
    assert (await show(api, "edge1"))["location"] == "YOW"


async def test_update_description_to_empty(api: Api) -> None:
    await api.add_subcloud("edge1", description="old")
    await patch_ok(api, "edge1", {"description": ""})
    assert (await show(api, "edge1"))["description"] == ""


async def test_update_group_by_name_and_back_by_id(api: Api) -> None:
    group = await create_group(api, "edge-group")
    await api.add_subcloud("edge1")
    await patch_ok(api, "edge1", {"group_id": "edge-group"})
    assert (await show(api, "edge1"))["group_id"] == group["id"]
    members = (await api.get(f"/v1.0/subcloud-groups/{group['id']}/subclouds")).json()["subclouds"]
    assert [m["name"] for m in members] == ["edge1"]
    await patch_ok(api, "edge1", {"group_id": 1})
    assert (await show(api, "edge1"))["group_id"] == 1


@pytest.mark.parametrize("group", ["no-such-group", "42", 42, "", True])
async def test_update_refused_for_an_invalid_group(api: Api, group: Any) -> None:
    await api.add_subcloud("edge1")
    await patch_refused(api, "edge1", {"group_id": group}, 400, "group")


async def test_update_is_all_or_nothing(api: Api) -> None:
    await api.add_subcloud("edge1", description="old")
    await patch_refused(api, "edge1", {"description": "new", "group_id": "no-such-group"}, 400, "group")
    assert (await show(api, "edge1"))["description"] == "old"


@pytest.mark.parametrize("body", [{"bogus": 1}, {"description": "x", "availability-status": "online"},
                                  {"region_name": "abc"}])
async def test_update_refused_for_an_unknown_field(api: Api, body: dict[str, Any]) -> None:
    await api.add_subcloud("edge1")
    unknown = next(k for k in body if k != "description")
    await patch_refused(api, "edge1", body, 400, unknown)


@pytest.mark.parametrize("body", [{}, {"description": None}], ids=["empty", "only-nulls"])
async def test_update_refused_with_nothing_to_update(api: Api, body: dict[str, Any]) -> None:
    await api.add_subcloud("edge1")
    await patch_refused(api, "edge1", body, 400, "nothing to update")


async def test_update_refused_for_an_empty_request_body(api: Api) -> None:
    await api.add_subcloud("edge1")
    before = await snapshot(api)
    assert_error(await api.patch(url("edge1")), 400, "nothing to update")
    await assert_unchanged(api, before)


@pytest.mark.parametrize(("content", "word"), [
    (b"description=x", "not valid JSON"),
    (b'{"description": "x"', "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b'["description", "x"]', "JSON object"),
    (b'"description"', "JSON object"),
])
async def test_update_refused_for_a_body_that_is_not_a_json_object(api: Api, content: bytes, word: str) -> None:
    await api.add_subcloud("edge1")
    before = await snapshot(api)
    headers = {**api.headers, "Content-Type": "application/json"}
    assert_error(await api.patch(url("edge1"), content=content, headers=headers), 400, word)
    await assert_unchanged(api, before)


@pytest.mark.parametrize("field", ["description", "location"])
async def test_update_refused_for_free_text_over_255_characters(api: Api, field: str) -> None:
    await api.add_subcloud("edge1")
    await patch_refused(api, "edge1", {field: "x" * 256}, 400, field, "255")


@pytest.mark.parametrize("field", ["description", "location"])
async def test_update_refused_for_free_text_that_is_not_a_string(api: Api, field: str) -> None:
    await api.add_subcloud("edge1")
    await patch_refused(api, "edge1", {field: ["a", "list"]}, 400, field, "string")


async def test_update_description_by_multipart_form(api: Api) -> None:
    await api.add_subcloud("edge1")
    response = await api.patch(url("edge1"), files={"description": (None, "From a form")})
    assert response.status_code == 200, response.text
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert (await show(api, "edge1"))["description"] == "From a form"


async def test_update_location_by_urlencoded_form(api: Api) -> None:
    await api.add_subcloud("edge1")
    response = await api.patch(url("edge1"), data={"location": "YOW"})
    assert response.status_code == 200, response.text
    assert (await show(api, "edge1"))["location"] == "YOW"


async def test_manage_with_force_by_multipart_form(api: Api) -> None:
    await deployed(api, "edge1", availability_status="offline")
    response = await api.patch(url("edge1"), files={"management-state": (None, "managed"), "force": (None, "true")})
    assert response.status_code == 200, response.text
    assert (await show(api, "edge1"))["management-state"] == "managed"


# ---------------------------------------------------------------------------------------------
# rename (§2.8; §2.10 region names are immutable; §1.5 alarm summary follows the name)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("new_name", ["Edge-2", "edge_2", "-edge2", "edge2-", "edge..2", "edge 2", "", "a" * 256, 7])
async def test_rename_refused_for_a_name_that_is_not_rfc_1123(api: Api, new_name: Any) -> None:
    await deployed(api, "edge1", availability_status="offline")
    await patch_refused(api, "edge1", {"name": new_name}, 400, "RFC 1123")


async def test_rename_refused_for_the_same_name(api: Api) -> None:
    await deployed(api, "edge1", availability_status="offline")
    await patch_refused(api, "edge1", {"name": "edge1"}, 400, "differ")


async def test_rename_refused_while_managed(api: Api) -> None:
    await deployed(api, "edge1", management_state="managed")
    await patch_refused(api, "edge1", {"name": "edge2"}, 422, "unmanaged")


@pytest.mark.parametrize("deploy_status", ["not-deployed", "create-complete", "bootstrapping", "config-failed"])
async def test_rename_refused_until_the_deploy_is_complete(api: Api, deploy_status: str) -> None:
    await deployed(api, "edge1", deploy_status=deploy_status)
    await patch_refused(api, "edge1", {"name": "edge2"}, 422, "complete", deploy_status)


@pytest.mark.parametrize("prestage_status", ["prestaging", "prestaging-packages", "prestaging-images"])
async def test_rename_refused_while_prestaging(api: Api, prestage_status: str) -> None:
    await deployed(api, "edge1", prestage_status=prestage_status)
    await patch_refused(api, "edge1", {"name": "edge2"}, 422, "prestag")


async def test_rename_refused_when_another_subcloud_has_the_name(api: Api) -> None:
    await deployed(api, "edge1")
    await api.add_subcloud("edge2")
    await patch_refused(api, "edge1", {"name": "edge2"}, 409, "edge2", "exists")


async def test_rename_refused_when_another_subcloud_has_it_as_region_name(api: Api) -> None:
    await deployed(api, "edge1")
    region = (await api.add_subcloud("edge2"))["region-name"]
    await patch_refused(api, "edge1", {"name": region}, 409, region)


async def test_rename_keeps_the_region_and_moves_the_alarm_summary(api: Api) -> None:
    before = await deployed(api, "edge1", availability_status="offline")
    answer = await patch_ok(api, "edge1", {"name": "edge-one.yow"})
    stored = await show(api, "edge-one.yow")
    assert stored == answer
    assert stored["id"] == before["id"]
    assert stored["region-name"] == before["region-name"]
    assert_error(await api.get(url("edge1")), 404, "edge1")
    alarms = (await api.get(ALARMS)).json()["alarm_summary"]
    assert [a["region_name"] for a in alarms] == ["edge-one.yow"]


async def test_rename_refused_for_an_all_digit_name(api: Api) -> None:
    await deployed(api, "edge1", availability_status="offline")
    await patch_refused(api, "edge1", {"name": "12345"}, 400, "digits")


# ---------------------------------------------------------------------------------------------
# delete (§2.9, with the [CUR] refusal during an active operation; §1.5 alarm row goes too)
# ---------------------------------------------------------------------------------------------


async def test_delete_refused_while_managed(api: Api) -> None:
    await deployed(api, "edge1", management_state="managed", availability_status="offline")
    await delete_refused(api, "edge1", 422, "unmanaged")


async def test_delete_refused_while_online(api: Api) -> None:
    await deployed(api, "edge1", availability_status="online")
    await delete_refused(api, "edge1", 422, "online")


async def test_delete_refused_for_a_peer_group_member(api: Api) -> None:
    await deployed(api, "edge1", availability_status="offline", peer_group_id=1)
    await delete_refused(api, "edge1", 422, "peer group")


@pytest.mark.parametrize("deploy_status", ["creating", "installing", "bootstrapping", "configuring",
                                           "aborting-install", "rehome-pending", "reconfiguring-network"])
async def test_delete_refused_during_an_active_deploy_operation(api: Api, deploy_status: str) -> None:
    await deployed(api, "edge1", deploy_status=deploy_status, availability_status="offline")
    await delete_refused(api, "edge1", 422, deploy_status)


@pytest.mark.parametrize("deploy_status", ["not-deployed", "create-failed", "install-failed", "complete"])
async def test_delete_an_unmanaged_offline_subcloud(api: Api, deploy_status: str) -> None:
    await api.add_subcloud("edge1")
    added = await api.add_subcloud("edge2")
    await api.set_state("edge2", deploy_status=deploy_status)
    response = await api.delete(url("edge2"))
    assert response.status_code == 200, response.text
    assert response.content == b""
    assert_error(await api.get(url("edge2")), 404)
    assert_error(await api.get(url(added["id"])), 404)
    assert [s["name"] for s in await api.subclouds()] == ["edge1"]
    alarms = (await api.get(ALARMS)).json()["alarm_summary"]
    assert [a["region_name"] for a in alarms] == ["edge1"]


async def test_a_deleted_name_can_be_added_again(api: Api) -> None:
    first = await api.add_subcloud("edge1")
    assert (await api.delete(url(first["id"]))).status_code == 200
    second = await api.add_subcloud("edge1")
    assert second["region-name"] != first["region-name"]
    assert [s["name"] for s in await api.subclouds()] == ["edge1"]


# ---------------------------------------------------------------------------------------------
# alarm summary (§1.5; api.md "Alarm summary")
# ---------------------------------------------------------------------------------------------


async def test_the_alarm_summary_lists_each_subcloud_as_not_yet_audited(api: Api) -> None:
    assert (await api.get(ALARMS)).json() == {"alarm_summary": []}
    await api.add_subcloud("edge1")
    await api.add_subcloud("edge2")
    response = await api.get(ALARMS)
    assert response.status_code == 200, response.text
    summary = response.json()["alarm_summary"]
    assert [a["region_name"] for a in summary] == ["edge1", "edge2"]
    for row in summary:
        assert list(row) == ["region_name", "uuid", "critical_alarms", "major_alarms", "minor_alarms",
                             "warnings", "cloud_status"]
        assert (row["critical_alarms"], row["major_alarms"], row["minor_alarms"], row["warnings"]) == (-1, -1, -1, -1)
        assert row["cloud_status"] == "disabled"
        assert len(row["uuid"]) == 36
    assert summary[0]["uuid"] != summary[1]["uuid"]


# ---------------------------------------------------------------------------------------------
# authentication and roles at the subcloud API (api.md: every call carries X-Auth-Token; 401, 403)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-Auth-Token": "not-a-token"}], ids=["no-token", "bad-token"])
@pytest.mark.parametrize("path", [SUBCLOUDS, url("edge1"), url("edge1") + "/detail", ALARMS])
async def test_reading_without_a_valid_token_is_unauthorized(api: Api, headers: dict[str, str], path: str) -> None:
    await api.add_subcloud("edge1")
    response = await api.get(path, headers=headers)
    assert_error(response, 401)
    assert "edge1" not in response.text


@pytest.mark.parametrize("headers", [{}, {"X-Auth-Token": "not-a-token"}], ids=["no-token", "bad-token"])
async def test_changing_without_a_valid_token_is_unauthorized(api: Api, headers: dict[str, str]) -> None:
    await deployed(api, "edge1", availability_status="offline")
    before = await snapshot(api)
    assert_error(await post_add(api, "edge2", headers=headers), 401)
    assert_error(await api.patch(url("edge1"), json={"description": "x"}, headers=headers), 401)
    assert_error(await api.delete(url("edge1"), headers=headers), 401)
    await assert_unchanged(api, before)


async def test_a_reader_may_read(api: Api) -> None:
    await api.add_subcloud("edge1")
    reader = {"X-Auth-Token": api.reader_token}
    for path in (SUBCLOUDS, url("edge1"), url("edge1") + "/detail", ALARMS):
        as_reader = await api.get(path, headers=reader)
        assert as_reader.status_code == 200, as_reader.text
        assert as_reader.json() == (await api.get(path)).json()


async def test_a_reader_may_not_add_update_or_delete(api: Api) -> None:
    await deployed(api, "edge1", availability_status="offline")
    reader = {"X-Auth-Token": api.reader_token}
    before = await snapshot(api)
    assert_error(await post_add(api, "edge2", headers=reader), 403, "reader")
    assert_error(await api.patch(url("edge1"), json={"description": "x"}, headers=reader), 403, "reader")
    assert_error(await api.patch(url("edge1"), json={"management-state": "managed", "force": True},
                                 headers=reader), 403, "reader")
    assert_error(await api.delete(url("edge1"), headers=reader), 403, "reader")
    await assert_unchanged(api, before)


# ---------------------------------------------------------------------------------------------
# update: install values, BMC password, rehome data, migrate mark, network fields (§2.6, §2.2)
# ---------------------------------------------------------------------------------------------

PEER_SITE = {"User-Agent": "dcmanager/1.0"}  # how a peer site's requests are told apart (§2.6)


def yaml_part(text: str, name: str = "values.yaml") -> tuple[str, bytes, str]:
    return (name, text.encode(), "application/x-yaml")


async def stored_bmc_password(api: Api, name: str) -> str | None:
    """The BMC password the deploy would hand to the installer, decrypted from its column."""
    from sqlalchemy import select

    from dcman.db.tables import subclouds

    async with api.ctx.engine.connect() as conn:
        token = (await conn.execute(select(subclouds.c.bmc_password).where(subclouds.c.name == name))).scalar_one()
    return None if token is None else api.ctx.secrets.decrypt(token)


async def shown_everywhere(api: Api, name: str) -> dict[str, Any]:
    """The subcloud as GET /subclouds/{sc} shows it, after checking /detail shows the same and
    that neither answer carries a password."""
    plain, detail = await api.get(url(name)), await api.get(url(name) + "/detail")
    assert plain.status_code == detail.status_code == 200, (plain.text, detail.text)
    for response in (plain, detail):
        assert_no_secret(response.text)
        assert "bmc_password" not in response.text
    shown = plain.json()
    assert {k: v for k, v in detail.json().items() if k in shown} == shown
    return shown


def saved_payload(subcloud: dict[str, Any]) -> dict[str, Any]:
    import json

    assert subcloud["rehome_data"], subcloud
    return json.loads(subcloud["rehome_data"])["saved_payload"]


async def test_update_install_values_by_multipart_as_the_dcmanager_client_sends_them(api: Api) -> None:
    # `dcmanager subcloud update --install-values F --bmc-password P`: a file part and a base64 field.
    await deployed(api, "edge1", availability_status="offline")
    response = await api.patch(url("edge1"), data={"bmc_password": BMC_PASSWORD_B64},
                               files={"install_values": yaml_part(install_values(bmc_password=None, install_type=5))})
    assert response.status_code == 200, response.text
    stored = await shown_everywhere(api, "edge1")
    assert stored == response.json()
    assert json.loads(stored["data_install"])["install_type"] == 5
    assert json.loads(stored["data_install"])["bmc_address"] == "10.10.10.20"
    assert json.loads(stored["data_install"])["software_version"] == stored["software-version"]
    assert await stored_bmc_password(api, "edge1") == BMC_PASSWORD


async def test_update_install_values_as_a_json_object(api: Api) -> None:
    await api.add_subcloud("edge1", install_values=install_values())
    values = yaml.safe_load(install_values(bmc_address="10.10.10.21", hw_settle="5"))
    answer = await patch_ok(api, "edge1", {"install_values": values})
    stored = await shown_everywhere(api, "edge1")
    assert stored == answer
    install = json.loads(stored["data_install"])
    assert (install["bmc_address"], install["hw_settle"]) == ("10.10.10.21", 5)
    assert await stored_bmc_password(api, "edge1") == BMC_PASSWORD


async def test_update_bmc_password_alone_applies_to_the_stored_install_values(api: Api) -> None:
    await api.add_subcloud("edge1", install_values=install_values())
    before = await show(api, "edge1")
    new_password = "Another-Bmc-7"
    await patch_ok(api, "edge1", {"bmc_password": base64.b64encode(new_password.encode()).decode()})
    stored = await shown_everywhere(api, "edge1")
    assert stored["data_install"] == before["data_install"]
    assert await stored_bmc_password(api, "edge1") == new_password


async def test_update_bmc_password_refused_for_a_subcloud_without_install_values(api: Api) -> None:
    await api.add_subcloud("edge1")
    await patch_refused(api, "edge1", {"bmc_password": BMC_PASSWORD_B64}, 400, "install_values")
    assert await stored_bmc_password(api, "edge1") is None


@pytest.mark.parametrize(("part", "word"), [
    ("bootstrap_interface: [eno1\n", "not valid YAML"),
    ("- not\n- a mapping\n", "mapping"),
    (install_values(install_type=9), "install_type"),
    (install_values(bmc_password="not base64!"), "base64"),
    (install_values(bmc_password=None), "bmc_password"),
    (install_values(bmc_address=None), "bmc_address"),
    (install_values(software_version="22.12"), "software_version"),
    (install_values(persistent_size=100), "persistent_size"),
], ids=["bad-yaml", "not-a-mapping", "install-type-9", "bmc-password-not-base64", "bmc-password-missing",
        "bmc-address-missing", "other-release", "persistent-size-small"])
async def test_update_refused_for_bad_install_values(api: Api, part: str, word: str) -> None:
    await api.add_subcloud("edge1", install_values=install_values())
    before = await snapshot(api)
    response = await api.patch(url("edge1"), data={"description": "changed"},
                               files={"install_values": yaml_part(part)})
    assert_error(response, 400, word)
    await assert_unchanged(api, before)
    assert await stored_bmc_password(api, "edge1") == BMC_PASSWORD


async def test_update_install_values_of_a_secondary_copy_from_its_peer_site_skip_the_checks(api: Api) -> None:
    # §2.6: the primary site checked them; a local update of the same copy is checked as usual.
    await api.add_subcloud("edge1")
    await api.set_state("edge1", deploy_status="secondary")
    unusual = install_values(install_type=9)
    await patch_refused(api, "edge1", {"install_values": unusual}, 400, "install_type")
    response = await api.patch(url("edge1"), json={"install_values": unusual}, headers={**api.headers, **PEER_SITE})
    assert response.status_code == 200, response.text
    stored = await shown_everywhere(api, "edge1")
    assert json.loads(stored["data_install"])["install_type"] == 9
    assert await stored_bmc_password(api, "edge1") == BMC_PASSWORD


async def test_update_bootstrap_values_save_the_rehome_payload_without_secrets(api: Api) -> None:
    await deployed(api, "edge1")
    values = bootstrap_values("edge1", sysadmin_password=SYSADMIN_PASSWORD, ansible_ssh_pass=SYSADMIN_PASSWORD,
                              ansible_become_pass=SYSADMIN_PASSWORD, admin_password=SYSADMIN_PASSWORD)
    response = await api.patch(url("edge1"), files={"bootstrap_values": yaml_part(yaml.safe_dump(values))})
    assert response.status_code == 200, response.text
    stored = await shown_everywhere(api, "edge1")
    assert stored == response.json()
    assert SYSADMIN_PASSWORD not in stored["rehome_data"]
    secrets = ("sysadmin_password", "ansible_ssh_pass", "ansible_become_pass", "admin_password")
    assert saved_payload(stored) == {k: v for k, v in values.items() if k not in secrets}


async def test_update_bootstrap_values_and_address_then_new_values_keep_the_address(api: Api) -> None:
    await deployed(api, "edge1")
    first = bootstrap_values("edge1")
    await patch_ok(api, "edge1", {"bootstrap_values": yaml.safe_dump(first), "bootstrap_address": "10.10.10.30"})
    assert saved_payload(await shown_everywhere(api, "edge1")) == {**first, "bootstrap-address": "10.10.10.30"}
    second = bootstrap_values("edge1", external_oam_floating_address="10.10.10.13")
    response = await api.patch(url("edge1"), files={"bootstrap_values": yaml_part(yaml.safe_dump(second))})
    assert response.status_code == 200, response.text
    assert saved_payload(await shown_everywhere(api, "edge1")) == {**second, "bootstrap-address": "10.10.10.30"}


async def test_update_bootstrap_address_into_existing_rehome_data(api: Api) -> None:
    await deployed(api, "edge1")
    await patch_ok(api, "edge1", {"bootstrap_values": bootstrap_values("edge1")})
    response = await api.patch(url("edge1"), files={"bootstrap_address": (None, "fd00:0:0::12")})
    assert response.status_code == 200, response.text
    assert saved_payload(await shown_everywhere(api, "edge1"))["bootstrap-address"] == "fd00::12"


async def test_update_bootstrap_address_refused_without_rehome_data(api: Api) -> None:
    await deployed(api, "edge1")
    fault = await patch_refused(api, "edge1", {"description": "moved", "bootstrap_address": "10.10.10.30"},
                                422, "rehome data", "bootstrap_values")
    assert "edge1" in fault
    assert (await show(api, "edge1"))["rehome_data"] is None


@pytest.mark.parametrize("address", ["", "10.10.10.300", "10.10.10.0/24", 7])
async def test_update_refused_for_a_bad_bootstrap_address(api: Api, address: Any) -> None:
    await deployed(api, "edge1")
    await patch_ok(api, "edge1", {"bootstrap_values": bootstrap_values("edge1")})
    await patch_refused(api, "edge1", {"bootstrap_address": address}, 400, "bootstrap_address")


@pytest.mark.parametrize(("text", "word"), [("name: [edge1\n", "not valid YAML"), ("just text\n", "mapping"),
                                            ("a: &x 1\nb: *x\n", "aliases")])
async def test_update_refused_for_bad_bootstrap_values(api: Api, text: str, word: str) -> None:
    await deployed(api, "edge1")
    before = await snapshot(api)
    response = await api.patch(url("edge1"), files={"bootstrap_values": yaml_part(text),
                                                    "bootstrap_address": (None, "10.10.10.30")})
    assert_error(response, 400, word)
    await assert_unchanged(api, before)


async def test_unmanage_with_migrate_marks_the_subcloud_rehome_pending(api: Api) -> None:
    # `dcmanager subcloud unmanage --migrate`; unmanaging a rehome-pending subcloud resets dc-cert too (§2.4).
    await deployed(api, "edge1", management_state="managed")
    await set_endpoint_status(api, "edge1", "dc-cert", "in-sync")
    response = await api.patch(url("edge1"), files={"management-state": (None, "unmanaged"),
                                                    "migrate": (None, "true")})
    assert response.status_code == 200, response.text
    stored = await shown_everywhere(api, "edge1")
    assert stored == response.json()
    assert (stored["management-state"], stored["deploy-status"]) == ("unmanaged", "rehome-pending")
    assert set(endpoint_map(stored).values()) == {"unknown"}
    # Managing it again ends the mark (§2.4 rule 6).
    assert (await patch_ok(api, "edge1", {"management-state": "managed"}))["deploy-status"] == "complete"


@pytest.mark.parametrize("migrate", [True, "true"])
async def test_migrate_marks_an_unmanaged_complete_subcloud(api: Api, migrate: Any) -> None:
    await deployed(api, "edge1", availability_status="offline")
    answer = await patch_ok(api, "edge1", {"migrate": migrate})
    assert answer["deploy-status"] == (await show(api, "edge1"))["deploy-status"] == "rehome-pending"


@pytest.mark.parametrize("deploy_status", ["create-complete", "bootstrap-failed", "rehome-failed"])
async def test_migrate_refused_until_the_deploy_is_complete(api: Api, deploy_status: str) -> None:
    await deployed(api, "edge1", deploy_status=deploy_status, availability_status="offline")
    await patch_refused(api, "edge1", {"migrate": "true"}, 400, "complete", deploy_status)


async def test_migrate_refused_while_managed(api: Api) -> None:
    await deployed(api, "edge1", management_state="managed")
    await patch_refused(api, "edge1", {"migrate": "true", "description": "moving"}, 400, "unmanaged")


async def test_migrate_refused_when_managing_in_the_same_request(api: Api) -> None:
    await deployed(api, "edge1")
    await patch_refused(api, "edge1", {"management-state": "managed", "migrate": "true"}, 400, "unmanaged")


@pytest.mark.parametrize(("body", "status", "word"), [
    ({"migrate": "false"}, 400, "nothing to update"),
    ({"migrate": "yes"}, 400, "true or false"),
])
async def test_migrate_false_alone_or_not_a_boolean_is_refused(api: Api, body: dict[str, Any], status: int,
                                                                word: str) -> None:
    await deployed(api, "edge1", availability_status="offline")
    await patch_refused(api, "edge1", body, status, word)


@pytest.mark.parametrize("field", ["management_subnet", "management_gateway_ip", "management_start_ip",
                                   "management_end_ip"])
async def test_a_partial_network_reconfiguration_names_the_fields_it_needs(api: Api, field: str) -> None:
    await deployed(api, "edge1", availability_status="offline")
    body = {field: "192.168.200.2", "bootstrap_address": "10.10.10.30",
            "sysadmin_password": SYSADMIN_PASSWORD_B64}
    fault = await patch_refused(api, "edge1", body, 422, "necessary for subcloud network reconfiguration",
                                "--management-subnet", "--management-end-ip")
    assert "sysadmin_password" not in fault and SYSADMIN_PASSWORD_B64 not in fault


async def test_the_unknown_field_error_lists_the_new_fields(api: Api) -> None:
    await api.add_subcloud("edge1")
    fault = await patch_refused(api, "edge1", {"bogus": 1}, 400, "bogus")
    for field in ("install_values", "bmc_password", "bootstrap_values", "bootstrap_address", "migrate"):
        assert field in fault


async def _member_of_a_new_peer_group(api: Api, priority: int = 0) -> tuple[int, int]:
    """edge1, deployed, unmanaged, in a peer group led here and associated with a peer whose copy is in sync:
    (peer group id, association id)."""
    from datetime import datetime, timezone

    from sqlalchemy import insert, update

    from dcman.db.tables import peer_group_associations, subcloud_peer_groups, system_peers

    group = await api.post("/v1.0/subcloud-peer-groups", json={"peer-group-name": "pg1"})
    assert group.status_code == 200, group.text
    group_id = group.json()["id"]
    await deployed(api, "edge1", management_state="managed")
    assert (await api.patch(url("edge1"), json={"peer_group": "pg1"})).status_code == 200
    await api.set_state("edge1", management_state="unmanaged")  # as before a migration
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    async with api.ctx.engine.begin() as conn:
        peer_id = (await conn.execute(insert(system_peers).values(
            peer_uuid="ac62f555-9386-42f1-b3a1-51ecb709409d", peer_name="site2",
            manager_endpoint="http://127.0.0.1:1/v3", manager_username="admin", manager_password="x",
            peer_controller_gateway_address="127.0.0.1", administrative_state="enabled",
            heartbeat_interval=60, heartbeat_failure_threshold=3, heartbeat_failure_policy="alarm",
            heartbeat_maintenance_timeout=600, availability_state="available", heartbeat_failures=0,
            created_at=now))).inserted_primary_key[0]
        association_id = (await conn.execute(insert(peer_group_associations).values(
            peer_group_id=group_id, system_peer_id=peer_id, peer_group_priority=1, association_type="primary",
            sync_status="in-sync", created_at=now))).inserted_primary_key[0]
        await conn.execute(update(subcloud_peer_groups).where(subcloud_peer_groups.c.id == group_id)
                           .values(group_priority=priority))
    return group_id, association_id


async def test_new_rehome_data_of_a_peer_group_member_puts_its_association_out_of_sync(api: Api) -> None:
    _, association_id = await _member_of_a_new_peer_group(api)
    await patch_ok(api, "edge1", {"bootstrap_values": bootstrap_values("edge1"), "bootstrap_address": "10.10.10.31"})
    assert saved_payload(await show(api, "edge1"))["bootstrap-address"] == "10.10.10.31"
    association = (await api.get(f"/v1.0/peer-group-associations/{association_id}")).json()
    assert association["sync-status"] == "out-of-sync"


@pytest.mark.parametrize("body", [{"bootstrap_address": "10.10.10.31"}, {"migrate": "true"},
                                  {"install_values": install_values()}], ids=["address", "migrate", "install"])
async def test_the_new_fields_follow_the_peer_group_guard(api: Api, body: dict[str, Any]) -> None:
    await _member_of_a_new_peer_group(api, priority=1)
    await patch_refused(api, "edge1", body, 400, "priority is 0")


async def test_the_stored_alarm_summary_rows_follow_every_writer(api: Api) -> None:
    """On SQLite each row of GET /alarms is JSON text kept by triggers (migration 0016), and the
    site sends its last answer again until triggers raise its version (0018); a later migration
    that rebuilt subclouds or subcloud_alarms in batch mode would drop them silently."""
    from sqlalchemy import text, update

    from dcman.db.tables import subcloud_alarms

    def shown(answer) -> list[tuple]:
        return [(s["region_name"], s["critical_alarms"], s["major_alarms"], s["warnings"], s["cloud_status"])
                for s in answer.json()["alarm_summary"]]

    await deployed(api, "edge-a", availability_status="offline")  # renamed only when deployed and unmanaged
    await api.add_subcloud("edge-b")
    assert [row[0] for row in shown(await api.get(ALARMS))] == ["edge-a", "edge-b"]  # the answer kept
    async with api.ctx.engine.begin() as conn:  # as the audit writes a summary
        await conn.execute(update(subcloud_alarms).values(critical_alarms=2, major_alarms=1, minor_alarms=0,
                                                          warnings=3, cloud_status="critical"))
        if api.backend == "sqlite":
            triggers = (await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))).scalars()
            assert {"subcloud_alarms_summary_on_insert", "subcloud_alarms_summary_on_update",
                    "subcloud_alarms_summary_on_rename", "alarm_summary_version_on_insert",
                    "alarm_summary_version_on_update", "alarm_summary_version_on_delete",
                    "alarm_summary_version_on_rename"} <= set(triggers)
    assert shown(await api.get(ALARMS)) == [("edge-a", 2, 1, 3, "critical"), ("edge-b", 2, 1, 3, "critical")]
    await patch_ok(api, "edge-a", {"name": "edge-c"})
    assert [row[0] for row in shown(await api.get(ALARMS))] == ["edge-c", "edge-b"]
    assert (await api.delete("/v1.0/subclouds/edge-b")).status_code == 200
    assert shown(await api.get(ALARMS)) == [("edge-c", 2, 1, 3, "critical")]
    await api.add_subcloud("edge-d")
    assert [row[0] for row in shown(await api.get(ALARMS))] == ["edge-c", "edge-d"]


async def test_the_kept_rows_of_the_unpaged_list_follow_every_writer_and_come_back_when_dropped(api: Api) -> None:
    """On SQLite each row of the unpaged GET /subclouds is JSON text kept by triggers generated
    from the list's expression (migration 0020, json_listing.ensure_kept_list_rows); whatever
    writes a subcloud or its endpoint statuses, the list reads as each subcloud's show does."""
    from sqlalchemy import delete, insert, text, update

    from dcman.db.engine import migrate
    from dcman.db.tables import subcloud_status, subclouds

    async def listed() -> dict[str, dict]:
        response = await api.get("/v1.0/subclouds")
        assert response.status_code == 200, response.text
        return {s["name"]: s for s in response.json()["subclouds"]}

    await deployed(api, "edge-a")
    await api.add_subcloud("edge-b")
    async with api.ctx.engine.begin() as conn:  # as the audit writes, straight to the tables
        a = (await conn.execute(text("SELECT id FROM subclouds WHERE name = 'edge-a'"))).scalar_one()
        await conn.execute(update(subclouds).where(subclouds.c.id == a).values(availability_status="offline"))
        await conn.execute(delete(subcloud_status).where(subcloud_status.c.subcloud_id == a))
        await conn.execute(insert(subcloud_status).values(subcloud_id=a, endpoint_type="platform",
                                                          sync_status="out-of-sync"))
    shown = await listed()
    assert shown["edge-a"]["availability-status"] == "offline" and shown["edge-a"]["sync_status"] == "out-of-sync"
    assert shown["edge-a"]["endpoint_sync_status"] == [{"endpoint_type": "platform", "sync_status": "out-of-sync"}]
    assert (await api.delete("/v1.0/subclouds/edge-b")).status_code == 200
    assert set(await listed()) == {"edge-a"}
    if api.backend != "sqlite":
        return
    async with api.ctx.engine.begin() as conn:  # a table rebuild, say, dropped one; a row went stale
        await conn.execute(text("DROP TRIGGER subcloud_list_row_on_update"))
        await conn.execute(text("UPDATE subcloud_list_rows SET body = '{}'"))
    await migrate(api.ctx.engine)  # what every start-up runs
    async with api.ctx.engine.connect() as conn:
        names = set((await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                              "AND name LIKE 'subcloud_list_row_%'"))).scalars())
    assert len(names) == 6
    assert (await listed())["edge-a"] == shown["edge-a"]  # refilled: as before the stale write


async def test_a_row_from_before_secrets_were_sealed_apart_is_listed_without_them(api: Api) -> None:
    """A stored install or rehome document written before secrets were sealed apart may still
    hold one: the unpaged list (kept rows or not) never shows it."""
    from sqlalchemy import update

    from dcman.db.tables import subclouds

    await api.add_subcloud("edge-a")
    await api.add_subcloud("edge-b")
    async with api.ctx.engine.begin() as conn:
        await conn.execute(update(subclouds).where(subclouds.c.name == "edge-a").values(
            data_install='{"bmc_address": "10.0.0.9", "bmc_PASSWORD": "hunter2"}'))
    listed = await api.get("/v1.0/subclouds")
    assert listed.status_code == 200 and "hunter2" not in listed.text
    rows = {s["name"]: s for s in listed.json()["subclouds"]}
    assert "10.0.0.9" in rows["edge-a"]["data_install"] and rows["edge-b"]["data_install"] is None
