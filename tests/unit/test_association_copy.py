"""The copy of a subcloud that the association sync keeps on the peer site (geo-redundancy
§3 step 5), and how the migration reads a peer's answer to a release (§4 step 4)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

from dcman.db import subclouds as subclouds_db
from dcman.domain.associations import copy_changes, subcloud_copy
from dcman.domain.migration import PeerAnswer, peer_answer
from dcman.domain.subcloud import Subcloud

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
VALUES = {"name": "old-name", "system_mode": "simplex", "management_subnet": "192.168.101.0/24",
          "systemcontroller_gateway_address": "192.168.204.101"}


def subcloud(**fields) -> Subcloud:
    base = {f.name: None for f in dataclasses.fields(Subcloud)}
    base.update(id=1, name="edge1", region_name="5f1a", software_version="24.09", created_at=NOW,
                plan=(), rehome_data=json.dumps({"saved_payload": {**VALUES, "bootstrap-address": "10.10.10.12"}}))
    base.update(fields)
    # As the repository maps the stored text.
    base["rehome"] = subclouds_db.decode_rehome(base.pop("rehome_data"))
    install = base.pop("data_install", None)
    base["install_values"] = json.loads(install) if install else None
    return Subcloud(**base)


def peer_listing(copy) -> dict:
    """The copy as the peer's API lists it once it stored it."""
    return {"description": copy.description or None, "location": copy.location, "software-version": copy.release,
            "rehome_data": json.dumps(copy.rehome_data), "data_install": json.dumps(copy.install_values)}


def test_the_copy_names_the_peers_gateway_and_the_subclouds_current_name():
    copy = subcloud_copy(subcloud(description=None, location="YOW"), "10.20.0.1")
    assert copy.bootstrap_values == {**VALUES, "name": "edge1", "systemcontroller_gateway_address": "10.20.0.1"}
    assert (copy.bootstrap_address, copy.description, copy.location, copy.release) == (
        "10.10.10.12", None, "YOW", "24.09")
    assert copy.rehome_data["saved_payload"]["systemcontroller_gateway_address"] == "10.20.0.1"
    assert copy.rehome_data["saved_payload"]["bootstrap-address"] == "10.10.10.12"


def test_a_subcloud_without_rehome_data_has_no_copy_and_says_why():
    assert subcloud_copy(subcloud(rehome_data=None), "10.20.0.1") == "subcloud edge1 has no rehome data to copy"
    assert isinstance(subcloud_copy(subcloud(rehome_data='{"saved_payload": {}}'), "10.20.0.1"), str)


def test_a_copy_in_line_with_the_peer_needs_no_update_and_each_difference_is_sent():
    copy = subcloud_copy(subcloud(data_install=json.dumps({"bmc_address": "10.0.0.9"})), "10.20.0.1")
    there = peer_listing(copy)
    assert copy_changes(copy, there) == {}
    assert copy_changes(copy, {**there, "data_install": {"bmc_address": "10.0.0.9"}}) == {}  # decoded already
    assert copy_changes(copy, {**there, "location": "elsewhere"}) == {"location": ""}
    assert copy_changes(copy, {**there, "software-version": "22.12"}) == {"release": "24.09"}
    old_gateway = {**copy.rehome_data}
    old_gateway["saved_payload"] = {**old_gateway["saved_payload"], "systemcontroller_gateway_address": "10.9.9.9"}
    assert copy_changes(copy, {**there, "rehome_data": json.dumps(old_gateway)}) == {
        "bootstrap_values": copy.bootstrap_values, "bootstrap_address": "10.10.10.12"}
    assert copy_changes(copy, {**there, "data_install": None}) == {"install_values": {"bmc_address": "10.0.0.9"}}


def test_a_silent_or_failing_peer_is_waited_for_and_only_a_4xx_is_a_refusal():
    assert peer_answer(None) is PeerAnswer.NO_ANSWER
    assert peer_answer(503) is PeerAnswer.NO_ANSWER and peer_answer(500) is PeerAnswer.NO_ANSWER
    assert peer_answer(404) is PeerAnswer.RELEASED  # it holds no copy: nothing to let go
    assert peer_answer(422) is PeerAnswer.REFUSED and peer_answer(401) is PeerAnswer.REFUSED


def test_a_copy_never_carries_a_secret_an_older_row_still_holds():
    rehome = {"saved_payload": {**VALUES, "admin_password": "Li69nux*", "bootstrap-address": "10.10.10.12",
                                "docker_registries": {"local": {"url": "r", "password": "reg-Secret"}}}}
    copy = subcloud_copy(subcloud(rehome_data=json.dumps(rehome),
                                  data_install=json.dumps({"bmc_address": "10.0.0.9", "BMC_Password": "x"})),
                         "10.20.0.1")
    assert "Li69nux*" not in json.dumps(copy.bootstrap_values) and "reg-Secret" not in json.dumps(copy.rehome_data)
    assert copy.bootstrap_values["docker_registries"] == {"local": {"url": "r"}}
    assert copy.install_values == {"bmc_address": "10.0.0.9"}
