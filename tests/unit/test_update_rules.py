"""The update-only subcloud rules (lifecycle §2.6): rehome data from bootstrap values and
address, the migrate mark, which updates are network reconfigurations. Pure functions."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest

from dcman.api.commands.subclouds import subcloud_update
from dcman.db import subclouds as subclouds_db
from dcman.domain.errors import InvalidInput, StateRefused
from dcman.domain.commands import NetworkReconfiguration
from dcman.domain.subcloud_ops import check_network_request
from dcman.domain.subcloud import (
    RehomeData,
    Subcloud,
    check_migrate_flag,
    check_release_mark,
    rehome_data,
    updated_rehome_data,
)

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
SECRETS = {"sysadmin_password": "s", "ansible_ssh_pass": "s", "ansible_become_pass": "s", "admin_password": "s"}


def subcloud(deploy_status: str = "complete", management: str = "unmanaged") -> Subcloud:
    fields = {f.name: None for f in dataclasses.fields(Subcloud)}
    fields.update(id=1, name="edge1", region_name="r1", deploy_status=deploy_status, management_state=management,
                  availability_status="online", created_at=NOW)
    return Subcloud(**fields)


def payload(rehome: RehomeData | None) -> dict:
    assert rehome is not None
    return json.loads(subclouds_db.encode_rehome(rehome) or "")["saved_payload"]


def test_rehome_data_drops_every_bootstrap_secret() -> None:
    assert payload(rehome_data({"name": "edge1", **SECRETS}, "10.0.0.1")) == {"name": "edge1",
                                                                             "bootstrap-address": "10.0.0.1"}


def test_new_values_replace_the_payload_but_keep_its_address_and_other_keys() -> None:
    current = json.dumps({"saved_payload": {"name": "old", "x": 1, "bootstrap-address": "10.0.0.1"}, "extra": 2})
    updated = json.loads(subclouds_db.encode_rehome(updated_rehome_data(subcloud(), subclouds_db.decode_rehome(current),
                                                           {"name": "new", **SECRETS}, None)) or "")
    assert updated == {"saved_payload": {"name": "new", "bootstrap-address": "10.0.0.1"}, "extra": 2}


def test_an_address_replaces_the_saved_one_and_goes_with_new_values() -> None:
    current = rehome_data({"name": "edge1"}, "10.0.0.1")
    assert payload(updated_rehome_data(subcloud(), current, None, "10.0.0.2"))["bootstrap-address"] == "10.0.0.2"
    assert payload(updated_rehome_data(subcloud(), None, {"name": "edge1"}, "10.0.0.3")) == {
        "name": "edge1", "bootstrap-address": "10.0.0.3"}
    assert updated_rehome_data(subcloud(), current, None, None) is None


@pytest.mark.parametrize("current", [None, "", "not json", json.dumps({"saved_payload": None}), "[]"])
def test_an_address_without_usable_rehome_data_is_refused(current: str | None) -> None:
    with pytest.raises(StateRefused, match="rehome data"):
        updated_rehome_data(subcloud(), subclouds_db.decode_rehome(current), None, "10.0.0.2")


@pytest.mark.parametrize(("state", "target", "from_peer", "expected"), [
    ({"management": "unmanaged"}, None, False, {"deploy_status": "rehome-pending"}),
    ({"management": "managed"}, "unmanaged", False, {"deploy_status": "rehome-pending"}),
    ({"deploy_status": "rehome-failed"}, None, True, {"deploy_status": "rehome-pending"}),
    ({"deploy_status": "rehome-pending", "management": "managed"}, None, False, {}),
])
def test_migrate_marks_rehome_pending(state: dict, target: str | None, from_peer: bool, expected: dict) -> None:
    mark = check_release_mark if from_peer else check_migrate_flag
    assert mark(subcloud(**state), True, target) == expected
    assert mark(subcloud(**state), False, target) == {}


@pytest.mark.parametrize(("state", "target", "word"), [
    ({"management": "managed"}, None, "unmanaged"),
    ({"management": "unmanaged"}, "managed", "unmanaged"),
    ({"deploy_status": "bootstrap-failed"}, None, "complete"),
])
def test_migrate_refusals(state: dict, target: str | None, word: str) -> None:
    with pytest.raises(InvalidInput, match=word):
        check_migrate_flag(subcloud(**state), True, target)


def test_any_management_field_makes_a_network_reconfiguration() -> None:
    assert not isinstance(subcloud_update({"description": "x", "bootstrap_address": "10.0.0.1"}),
                          NetworkReconfiguration)
    assert isinstance(subcloud_update({"management_end_ip": "10.0.0.9"}), NetworkReconfiguration)


def test_a_partial_network_reconfiguration_names_every_field_it_needs() -> None:
    body = {"management_end_ip": "10.0.0.9", "bootstrap_address": "10.0.0.1", "sysadmin_password": "cw=="}
    with pytest.raises(StateRefused, match="necessary for subcloud network reconfiguration: --management-subnet, "
                                           "--management-gateway-ip, --management-start-ip, --management-end-ip"):
        check_network_request(subcloud(), subcloud_update(body))