"""Subcloud peer groups (geo-redundancy reference §1) and subcloud membership (§6 rules 3-5)
through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest
from sqlalchemy import insert, update

from conftest import Api

OTHER_SITE = "ac62f555-9386-42f1-b3a1-51ecb709409d"
BASE = "/v1.0/subcloud-peer-groups"


def fault(response) -> str:
    return response.json()["error_message"]["faultstring"]


async def peer_groups(api: Api) -> list[dict]:
    response = await api.get(BASE)
    assert response.status_code == 200, response.text
    return response.json()["subcloud_peer_groups"]


async def create(api: Api, name: str = "pg1", **fields) -> dict:
    response = await api.post(BASE, json={"peer-group-name": name, **fields})
    assert response.status_code == 200, response.text
    return response.json()


async def subcloud(api: Api, name: str) -> dict:
    response = await api.get(f"/v1.0/subclouds/{name}")
    assert response.status_code == 200, response.text
    return response.json()


async def ready_subcloud(api: Api, name: str = "edge1", **state) -> dict:
    await api.add_subcloud(name)
    columns = {"deploy_status": "complete", "management_state": "managed", "availability_status": "online", **state}
    await api.set_state(name, **columns)
    return await subcloud(api, name)


async def join(api: Api, name: str, group) -> object:
    return await api.patch(f"/v1.0/subclouds/{name}", json={"peer_group": group})


async def set_group(api: Api, group_id: int, **columns) -> None:
    from dcman.db.tables import subcloud_peer_groups

    async with api.ctx.engine.begin() as conn:
        await conn.execute(update(subcloud_peer_groups).where(subcloud_peer_groups.c.id == group_id).values(**columns))


async def associate_peer(api: Api, group_id: int, availability: str) -> int:
    from dcman.db.tables import peer_group_associations, system_peers

    now = datetime.utcnow()
    async with api.ctx.engine.begin() as conn:
        peer_id = (await conn.execute(insert(system_peers).values(
            peer_uuid=str(uuid.uuid4()), peer_name=f"peer-{uuid.uuid4().hex[:6]}",
            manager_endpoint="http://127.0.0.1:1/v3", manager_username="admin", manager_password="x",
            peer_controller_gateway_address="127.0.0.1", administrative_state="enabled",
            heartbeat_interval=60, heartbeat_failure_threshold=3, heartbeat_failure_policy="alarm",
            heartbeat_maintenance_timeout=600, availability_state=availability, heartbeat_failures=0,
            created_at=now))).inserted_primary_key[0]
        await conn.execute(insert(peer_group_associations).values(
            peer_group_id=group_id, system_peer_id=peer_id, peer_group_priority=1, association_type="primary",
            sync_status="in-sync", created_at=now))
    return peer_id


async def set_peer(api: Api, peer_id: int, availability: str) -> None:
    from dcman.db.tables import system_peers

    async with api.ctx.engine.begin() as conn:
        await conn.execute(update(system_peers).where(system_peers.c.id == peer_id)
                           .values(availability_state=availability))


# --- the resource ---------------------------------------------------------------------------


async def test_create_with_defaults_is_led_by_this_site(api: Api) -> None:
    assert await peer_groups(api) == []
    group = await create(api, "dc1-pg")
    assert list(group) == ["id", "peer_group_name", "group_priority", "group_state", "max_subcloud_rehoming",
                           "system_leader_id", "system_leader_name", "migration_status", "created-at", "updated-at"]
    assert (group["peer_group_name"], group["group_priority"], group["group_state"],
            group["max_subcloud_rehoming"], group["migration_status"]) == ("dc1-pg", 0, "enabled", 10, None)
    assert group["system_leader_id"] == api.ctx.site_uuid
    assert group["system_leader_name"] == "test-site"
    assert (await api.get(f"{BASE}/dc1-pg")).json() == group
    assert (await api.get(f"{BASE}/{group['id']}")).json() == group
    assert await peer_groups(api) == [group]
    assert (await api.get(f"{BASE}/nosuch")).status_code == 404


async def test_create_with_every_field(api: Api) -> None:
    group = await create(api, "pg2", **{"group-priority": 3, "group-state": "disabled", "max-subcloud-rehoming": 250,
                                        "system-leader-id": OTHER_SITE, "system-leader-name": "dc1-name"})
    assert (group["group_priority"], group["group_state"], group["max_subcloud_rehoming"],
            group["system_leader_id"], group["system_leader_name"]) == (3, "disabled", 250, OTHER_SITE, "dc1-name")


@pytest.mark.parametrize(
    "change, words",
    [
        ({"peer-group-name": None}, "required"),
        ({"peer-group-name": ""}, "non-empty"),
        ({"peer-group-name": "12345"}, "digits"),
        ({"peer-group-name": "a" * 256}, "255"),
        ({"peer-group-name": "none"}, "reserved"),
        ({"group-priority": -1}, "0 to 65536"),
        ({"group-priority": 65537}, "0 to 65536"),
        ({"group-priority": "high"}, "group-priority"),
        ({"group-priority": True}, "group-priority"),
        ({"group-state": "on"}, "enabled or disabled"),
        ({"max-subcloud-rehoming": 0}, "1 to 250"),
        ({"max-subcloud-rehoming": 251}, "1 to 250"),
        ({"system-leader-id": "not-a-uuid"}, "UUID"),
        ({"system-leader-name": ""}, "system-leader-name"),
        ({"colour": "red"}, "Unknown"),
        ({"migration_status": "migrating"}, "Unknown"),
    ],
)
async def test_create_rejects_bad_fields_and_creates_nothing(api: Api, change, words) -> None:
    response = await api.post(BASE, json={"peer-group-name": "pg1", **change})
    assert response.status_code == 400, response.text
    assert words in fault(response)
    assert await peer_groups(api) == []


async def test_duplicate_name_is_a_conflict(api: Api) -> None:
    await create(api, "pg1")
    response = await api.post(BASE, json={"peer-group-name": "pg1", "group-priority": 2})
    assert response.status_code == 409
    assert "already exists" in fault(response)
    assert [(g["peer_group_name"], g["group_priority"]) for g in await peer_groups(api)] == [("pg1", 0)]


async def test_update_and_rename(api: Api) -> None:
    group = await create(api, "pg1")
    await create(api, "pg2")
    response = await api.patch(f"{BASE}/pg1", json={"peer-group-name": "pg1b", "group-priority": 2,
                                                   "group-state": "disabled", "max-subcloud-rehoming": 5,
                                                   "system-leader-name": "other"})
    assert response.status_code == 200, response.text
    shown = (await api.get(f"{BASE}/{group['id']}")).json()
    assert (shown["peer_group_name"], shown["group_priority"], shown["group_state"], shown["max_subcloud_rehoming"],
            shown["system_leader_name"]) == ("pg1b", 2, "disabled", 5, "other")
    assert shown["updated-at"] is not None

    taken = await api.patch(f"{BASE}/pg1b", json={"peer-group-name": "pg2"})
    assert taken.status_code == 409 and "already exists" in fault(taken)
    for body, words in (({}, "Nothing to update"), ({"group-priority": 70000}, "0 to 65536"),
                        ({"migration_status": "lost"}, "none, migrating or complete")):
        refused = await api.patch(f"{BASE}/pg1b", json=body)
        assert refused.status_code == 400 and words in fault(refused), refused.text
    assert (await api.get(f"{BASE}/{group['id']}")).json() == shown
    assert (await api.patch(f"{BASE}/nosuch", json={"group-priority": 1})).status_code == 404


async def test_a_migrating_group_cannot_be_updated(api: Api) -> None:
    await create(api, "pg1")
    response = await api.patch(f"{BASE}/pg1", json={"migration_status": "migrating"})
    assert response.status_code == 200 and response.json()["migration_status"] == "migrating"
    refused = await api.patch(f"{BASE}/pg1", json={"group-priority": 1})
    assert refused.status_code == 422
    assert "migrating" in fault(refused)
    assert (await api.get(f"{BASE}/pg1")).json()["group_priority"] == 0
    # ending the migration is the one change allowed
    done = await api.patch(f"{BASE}/pg1", json={"migration_status": "complete"})
    assert done.status_code == 200 and done.json()["migration_status"] == "complete"


async def test_delete_refused_with_a_member_or_an_association(api: Api) -> None:
    group = await create(api, "pg1")
    await ready_subcloud(api, "edge1")
    assert (await join(api, "edge1", "pg1")).status_code == 200
    refused = await api.delete(f"{BASE}/pg1")
    assert refused.status_code == 400 and "subclouds" in fault(refused)
    assert (await join(api, "edge1", "none")).status_code == 200
    peer = await associate_peer(api, group["id"], "available")
    refused = await api.delete(f"{BASE}/pg1")
    assert refused.status_code == 400 and "associations" in fault(refused)
    assert [g["peer_group_name"] for g in await peer_groups(api)] == ["pg1"]
    assert peer

    empty = await create(api, "pg2")
    assert (await api.delete(f"{BASE}/{empty['id']}")).status_code == 200
    assert (await api.get(f"{BASE}/pg2")).status_code == 404
    assert (await api.delete(f"{BASE}/pg2")).status_code == 404


async def test_subclouds_and_status_counts(api: Api) -> None:
    group = await create(api, "pg1")
    await create(api, "pg2")
    for name in ("edge1", "edge2", "edge3", "edge4", "edge5"):
        await ready_subcloud(api, name)
        assert (await join(api, name, group["id"])).status_code == 200
    await ready_subcloud(api, "outsider")
    await api.set_state("edge2", deploy_status="rehome-pending", management_state="unmanaged")
    await api.set_state("edge3", deploy_status="rehoming", management_state="unmanaged")
    await api.set_state("edge4", deploy_status="rehome-prep-failed", management_state="unmanaged")

    members = (await api.get(f"{BASE}/pg1/subclouds")).json()["subclouds"]
    assert [m["name"] for m in members] == ["edge1", "edge2", "edge3", "edge4", "edge5"]
    assert all(m["peer_group_id"] == group["id"] for m in members) and "deploy-status" in members[0]
    assert (await api.get(f"{BASE}/pg2/subclouds")).json() == {"subclouds": []}

    status = (await api.get(f"{BASE}/pg1/status")).json()
    assert status == {"peer_group_id": group["id"], "peer_group_name": "pg1", "total_subclouds": 5, "complete": 2,
                      "waiting_for_migrate": 1, "rehoming": 1, "rehome_failed": 1, "managed": 2, "unmanaged": 3,
                      "migration_message": None}
    assert (await api.get(f"{BASE}/pg2/status")).json()["total_subclouds"] == 0
    assert (await api.get(f"{BASE}/nosuch/status")).status_code == 404


# --- membership -----------------------------------------------------------------------------


async def test_join_saves_rehome_data_and_leave_clears_the_group(api: Api) -> None:
    group = await create(api, "pg1")
    await ready_subcloud(api, "edge1")
    response = await join(api, "edge1", "pg1")
    assert response.status_code == 200, response.text
    assert response.json()["peer_group_id"] == group["id"]
    saved = json.loads((await subcloud(api, "edge1"))["rehome_data"])["saved_payload"]
    assert saved["name"] == "edge1" and saved["bootstrap-address"] == "10.10.10.12"
    assert "management_subnet" in saved and "sysadmin_password" not in saved

    left = await join(api, "edge1", "none")
    assert left.status_code == 200, left.text
    assert left.json()["peer_group_id"] is None
    assert left.json()["rehome_data"]  # kept for a later join


async def test_existing_rehome_data_is_kept_on_join(api: Api) -> None:
    await create(api, "pg1")
    await ready_subcloud(api, "edge1", rehome_data='{"saved_payload": {"name": "kept"}}')
    assert (await join(api, "edge1", "pg1")).status_code == 200
    assert (await subcloud(api, "edge1"))["rehome_data"] == '{"saved_payload": {"name": "kept"}}'


@pytest.mark.parametrize(
    "state, group_fields, words",
    [
        ({"availability_status": "offline"}, {}, "offline, not online"),
        ({"management_state": "unmanaged"}, {}, "unmanaged, not managed"),
        ({"deploy_status": "config-failed"}, {}, "config-failed, not complete"),
        ({}, {"group-priority": 1}, "priority"),
        ({}, {"system-leader-id": OTHER_SITE, "system-leader-name": "dc1"}, "not led by this site"),
    ],
)
async def test_join_refused(api: Api, state, group_fields, words) -> None:
    await create(api, "pg1", **group_fields)
    before = await ready_subcloud(api, "edge1", **state)
    response = await join(api, "edge1", "pg1")
    assert response.status_code == 400, response.text
    assert words in fault(response)
    assert await subcloud(api, "edge1") == before


async def test_join_of_a_missing_group_or_a_bad_reference_is_refused(api: Api) -> None:
    before = await ready_subcloud(api, "edge1")
    for ref, words in (("nosuch", "Invalid peer group"), (99, "Invalid peer group"), (2**40, "Invalid peer group"),
                       (True, "Invalid peer group"), ([1], "Invalid peer group")):
        response = await join(api, "edge1", ref)
        assert response.status_code == 400, response.text
        assert words in fault(response)
    assert await subcloud(api, "edge1") == before


async def test_moving_out_of_a_group_with_priority_above_zero_is_refused(api: Api) -> None:
    first = await create(api, "pg1")
    await create(api, "pg2")
    await ready_subcloud(api, "edge1")
    assert (await join(api, "edge1", "pg1")).status_code == 200
    assert (await join(api, "edge1", "pg2")).status_code == 200  # priority 0: moving is allowed
    assert (await join(api, "edge1", "pg1")).status_code == 200
    await set_group(api, first["id"], group_priority=2)
    before = await subcloud(api, "edge1")
    response = await join(api, "edge1", "pg2")
    assert response.status_code == 400 and "priority" in fault(response)
    assert await subcloud(api, "edge1") == before


async def test_general_guard_on_a_member_of_a_group_with_priority_above_zero(api: Api) -> None:
    group = await create(api, "pg1")
    await ready_subcloud(api, "edge1")
    assert (await join(api, "edge1", "pg1")).status_code == 200
    ok = await api.patch("/v1.0/subclouds/edge1", json={"description": "still primary"})
    assert ok.status_code == 200 and ok.json()["description"] == "still primary"

    await set_group(api, group["id"], group_priority=1)
    before = await subcloud(api, "edge1")
    refused = await api.patch("/v1.0/subclouds/edge1", json={"description": "changed"})
    assert refused.status_code == 400
    assert "priority is 0" in fault(refused)
    await set_group(api, group["id"], group_priority=0, system_leader_id=OTHER_SITE)
    refused = await api.patch("/v1.0/subclouds/edge1", json={"location": "elsewhere"})
    assert refused.status_code == 400 and "leader" in fault(refused)
    assert await subcloud(api, "edge1") == before


async def test_leave_of_a_group_led_elsewhere_is_refused(api: Api) -> None:
    group = await create(api, "pg1")
    await ready_subcloud(api, "edge1")
    assert (await join(api, "edge1", "pg1")).status_code == 200
    await set_group(api, group["id"], system_leader_id=OTHER_SITE)
    response = await join(api, "edge1", "none")
    assert response.status_code == 400 and "led by" in fault(response)
    assert (await subcloud(api, "edge1"))["peer_group_id"] == group["id"]


async def test_leave_of_a_secondary_group_waits_for_the_peer_to_be_unavailable(api: Api) -> None:
    group = await create(api, "pg1")
    await ready_subcloud(api, "edge1")
    assert (await join(api, "edge1", "pg1")).status_code == 200
    await set_group(api, group["id"], group_priority=1)
    peer = await associate_peer(api, group["id"], "available")
    await associate_peer(api, group["id"], "unavailable")

    refused = await join(api, "edge1", "None")
    assert refused.status_code == 400 and "available" in fault(refused)
    assert (await subcloud(api, "edge1"))["peer_group_id"] == group["id"]

    await set_peer(api, peer, "unavailable")
    left = await join(api, "edge1", "none")
    assert left.status_code == 200, left.text
    assert left.json()["peer_group_id"] is None


# --- automatic failover's fields (dcman's additions) -----------------------------------------------


async def test_the_failover_password_is_kept_sealed_and_never_shown(api: Api) -> None:
    from dcman.db.tables import subcloud_peer_groups

    group = await create(api, "pg1", **{"group-priority": 2})
    updated = await api.patch(f"{BASE}/pg1", json={"sysadmin_password": "U3Q4cmxpbmdYKg=="})
    assert updated.status_code == 200, updated.text
    assert "St8rlingX" not in updated.text and "sysadmin" not in updated.text
    assert "St8rlingX" not in (await api.get(f"{BASE}/pg1")).text
    async with api.ctx.engine.connect() as conn:
        sealed = (await conn.execute(subcloud_peer_groups.select().where(
            subcloud_peer_groups.c.id == group["id"]))).mappings().one()["failover_password"]
    assert sealed and "St8rlingX" not in sealed and api.ctx.secrets.decrypt(sealed) == "St8rlingX*"
    not_base64 = await api.patch(f"{BASE}/pg1", json={"sysadmin_password": "not base64!"})
    assert not_base64.status_code == 400 and "base64" in fault(not_base64)


PEER_USER_AGENT = "dcmanager/1.0"  # with the admin account: a peer site (reference §6)


async def test_only_a_peer_sends_the_protection_list_and_only_an_operator_the_password(api: Api) -> None:
    await create(api, "pg1", **{"group-priority": 1})
    protection = [{"peer_uuid": OTHER_SITE, "priority": 0}, {"peer_uuid": str(uuid.uuid4()), "priority": 1}]
    by_operator = await api.patch(f"{BASE}/pg1", json={"protection": protection})
    assert by_operator.status_code == 400 and "primary site's sync" in fault(by_operator)
    peer = {**api.headers, "User-Agent": PEER_USER_AGENT}
    assert (await api.patch(f"{BASE}/pg1", json={"protection": protection}, headers=peer)).status_code == 200
    from_peer = await api.patch(f"{BASE}/pg1", json={"sysadmin_password": "U3Q4cmxpbmdYKg=="}, headers=peer)
    assert from_peer.status_code == 400 and "peer site does not send" in fault(from_peer)
    for bad in ([{"peer_uuid": "x", "priority": 0}], [{"peer_uuid": OTHER_SITE, "priority": -1}],
                [{"peer_uuid": OTHER_SITE}], {"peer_uuid": OTHER_SITE, "priority": 0},
                [{"peer_uuid": OTHER_SITE, "priority": 0}] * 17):
        refused = await api.patch(f"{BASE}/pg1", json={"protection": bad}, headers=peer)
        assert refused.status_code == 400 and "protection must be" in fault(refused), refused.text
    from dcman.db import peer_groups as peer_groups_db

    async with api.ctx.engine.connect() as conn:
        stored = await peer_groups_db.get_peer_group(conn, "pg1")
    assert stored is not None and stored.priorities == {p["peer_uuid"]: p["priority"] for p in protection}
