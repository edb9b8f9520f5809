"""Peer group association refusals (geo-redundancy reference §1, §3), in-process on SQLite and
PostgreSQL: each bad request gets its code and message and changes nothing."""

from __future__ import annotations

import base64
import uuid

import pytest

PATH = "/v1.0/peer-group-associations"


def fault(response) -> str:
    return response.json()["error_message"]["faultstring"]


async def peer(api, name: str = "site2") -> dict:
    response = await api.post("/v1.0/system-peers", json={
        "peer_uuid": str(uuid.uuid4()), "peer_name": name, "manager_endpoint": "http://127.0.0.1:1/v3",
        "manager_username": "admin", "manager_password": base64.b64encode(b"secret-1").decode(),
        "peer_controller_gateway_address": "127.0.0.1"})
    assert response.status_code == 200, response.text
    return response.json()


async def group(api, name: str = "pg1", priority: int = 0) -> dict:
    response = await api.post("/v1.0/subcloud-peer-groups", json={"peer-group-name": name, "group-priority": priority})
    assert response.status_code == 200, response.text
    return response.json()


async def associations(api) -> list[dict]:
    return (await api.get(PATH)).json()["peer_group_associations"]


async def test_create_show_update_and_delete(api):
    p, g = await peer(api), await group(api)
    created = await api.post(PATH, json={"peer_group_id": g["id"], "system_peer_id": p["id"],
                                         "peer_group_priority": 2})
    assert created.status_code == 200, created.text
    body = created.json()
    assert (body["association-type"], body["sync-status"], body["peer-group-priority"]) == ("primary", "syncing", 2)
    assert (await api.get(f"{PATH}/{body['id']}")).json() == body
    updated = await api.patch(f"{PATH}/{body['id']}", json={"peer_group_priority": 3})
    assert updated.status_code == 200 and updated.json()["sync-status"] == "out-of-sync"
    listed = (await api.get(f"/v1.0/system-peers/{p['id']}/subcloud-peer-groups")).json()
    assert [g["peer_group_name"] for g in listed["subcloud_peer_groups"]] == ["pg1"]
    # The peer was never reached, so only the local association goes.
    assert (await api.delete(f"{PATH}/{body['id']}")).status_code == 200
    assert await associations(api) == []


@pytest.mark.parametrize("change, status, words", [
    ({"peer_group_id": None}, 400, "peer_group_id is required"),
    ({"system_peer_id": None}, 400, "system_peer_id is required"),
    ({"peer_group_priority": 0}, 400, "1 to 65536"),
    ({"peer_group_priority": 70000}, 400, "1 to 65536"),
    ({"peer_group_id": 999}, 400, "does not exist"),
    ({"system_peer_id": 999}, 400, "does not exist"),
    ({"association_type": "non-primary"}, 400, "non-primary"),
])
async def test_bad_creates_are_refused_and_create_nothing(api, change, status, words):
    p, g = await peer(api), await group(api)
    body = {"peer_group_id": g["id"], "system_peer_id": p["id"], **change}
    response = await api.post(PATH, json={k: v for k, v in body.items() if v is not None})
    assert response.status_code == status, response.text
    assert words in fault(response)
    assert await associations(api) == []


async def test_one_association_per_group_and_peer(api):
    p, g = await peer(api), await group(api)
    body = {"peer_group_id": g["id"], "system_peer_id": p["id"]}
    assert (await api.post(PATH, json=body)).status_code == 200
    again = await api.post(PATH, json=body)
    assert again.status_code == 409 and "already associated" in fault(again)
    assert len(await associations(api)) == 1


async def test_a_group_this_site_does_not_own_cannot_get_a_primary_association(api):
    p, g = await peer(api), await group(api, priority=3)
    response = await api.post(PATH, json={"peer_group_id": g["id"], "system_peer_id": p["id"]})
    assert response.status_code == 422 and "priority 3" in fault(response)
    assert await associations(api) == []


async def test_sync_status_is_not_set_by_hand_and_unknown_fields_are_refused(api):
    p, g = await peer(api), await group(api)
    created = (await api.post(PATH, json={"peer_group_id": g["id"], "system_peer_id": p["id"]})).json()
    before = await associations(api)
    for body, words in (({"sync_status": "in-sync"}, "set by the peer"), ({"colour": 1}, "Unknown"),
                        ({}, "Nothing to update")):
        response = await api.patch(f"{PATH}/{created['id']}", json=body)
        assert response.status_code == 400 and words in fault(response)
    assert await associations(api) == before


async def test_a_peer_with_an_association_cannot_be_deleted(api):
    p, g = await peer(api), await group(api)
    await api.post(PATH, json={"peer_group_id": g["id"], "system_peer_id": p["id"]})
    response = await api.delete(f"/v1.0/system-peers/{p['id']}")
    assert response.status_code == 400


async def test_unknown_association_is_404(api):
    for call in (api.get(f"{PATH}/77"), api.patch(f"{PATH}/77", json={"peer_group_priority": 2}),
                 api.patch(f"{PATH}/77/sync"), api.delete(f"{PATH}/abc")):
        response = await call
        assert response.status_code == 404, response.text
