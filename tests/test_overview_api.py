"""dcman's additions for operators, on SQLite and PostgreSQL: the paged, filtered subcloud list,
GET /v1.0/dashboard, the fault-alarm filters, and the /ui files."""

from __future__ import annotations

import pytest
from conftest import Api


async def _fleet(api: Api) -> dict[str, int]:
    """Six subclouds in known states: two groups, one peer group."""
    group = await api.post("/v1.0/subcloud-groups", json={
        "name": "rack-b", "description": "second rack", "update_apply_type": "parallel", "max_parallel_subclouds": 2})
    assert group.status_code == 200, group.text
    peer_group = await api.post("/v1.0/subcloud-peer-groups", json={"peer-group-name": "pg-east"})
    assert peer_group.status_code == 200, peer_group.text
    ids = {}
    for i, name in enumerate(["edge-a1", "edge-a2", "edge-b1", "Edge-B2", "core-1", "core-2"]):
        fields = {"group_id": "rack-b"} if "b" in name.lower() else {}
        ids[name] = (await api.add_subcloud(name, **fields))["id"]
        if i < 4:
            await api.set_state(name, deploy_status="complete", availability_status="online",
                                management_state="managed" if i % 2 == 0 else "unmanaged")
    await api.set_state("edge-a1", peer_group_id=peer_group.json()["id"])
    await api.set_state("edge-b1", peer_group_id=peer_group.json()["id"])
    return ids


async def _page(api: Api, **params: object) -> dict:
    response = await api.get("/v1.0/subclouds", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_without_parameters_the_list_is_the_reference_one(api: Api) -> None:
    await _fleet(api)
    body = (await api.get("/v1.0/subclouds")).json()
    assert list(body) == ["subclouds"]
    assert len(body["subclouds"]) == 6


async def test_the_list_is_paged_in_id_order_with_the_total(api: Api) -> None:
    ids = await _fleet(api)
    first = await _page(api, limit=4)
    second = await _page(api, limit=4, offset=4)
    assert first["total"] == second["total"] == 6
    assert [s["id"] for s in first["subclouds"] + second["subclouds"]] == sorted(ids.values())
    assert len(second["subclouds"]) == 2
    assert "sync_status" in first["subclouds"][0] and "endpoint_sync_status" in first["subclouds"][0]


async def test_filters_combine(api: Api) -> None:
    await _fleet(api)

    async def names(**params: object) -> list[str]:
        return [s["name"] for s in (await _page(api, **params))["subclouds"]]

    assert await names(name="edge-b") == ["edge-b1", "Edge-B2"]  # any case
    assert await names(availability="offline") == ["core-1", "core-2"]
    assert await names(management="managed") == ["edge-a1", "edge-b1"]
    assert await names(deploy_status="complete", management="unmanaged") == ["edge-a2", "Edge-B2"]
    assert await names(group="rack-b") == ["edge-b1", "Edge-B2"]
    assert await names(peer_group="pg-east") == ["edge-a1", "edge-b1"]
    assert await names(peer_group="none", name="edge") == ["edge-a2", "Edge-B2"]
    assert await names(name="%") == []  # a wildcard is a plain character here
    assert (await _page(api, name="edge", limit=1))["total"] == 4


@pytest.mark.parametrize(("params", "words"), [
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"offset": "-1"}, "offset"), ({"availability": "up"}, "availability"),
    ({"management": "MANAGED"}, "management"), ({"deploy_status": "done"}, "deploy_status"),
    ({"name": "a\x00b"}, "name"), ({"limits": "5"}, "Unknown parameter(s) limits"),
])
async def test_bad_list_parameters_are_refused_with_one_sentence(api: Api, params: dict, words: str) -> None:
    response = await api.get("/v1.0/subclouds", params=params)
    assert response.status_code == 400, response.text
    assert words in response.json()["error_message"]["faultstring"]


@pytest.mark.parametrize(("params", "words"), [({"group": "no-such-group"}, "group"),
                                               ({"peer_group": "no-such"}, "peer_group")])
async def test_a_filter_naming_no_group_is_not_found(api: Api, params: dict, words: str) -> None:
    response = await api.get("/v1.0/subclouds", params=params)
    assert response.status_code == 404, response.text
    assert words in response.json()["error_message"]["faultstring"]


async def test_the_dashboard_counts_subclouds_alarms_and_peer_groups(api: Api) -> None:
    await _fleet(api)
    board = (await api.get("/v1.0/dashboard")).json()
    assert board["subclouds"] == {
        "total": 6,
        "availability-status": {"online": 4, "offline": 2},
        "management-state": {"managed": 2, "unmanaged": 4},
        "deploy-status": {"complete": 4, "not-deployed": 2},
    }
    assert board["alarms"] == {"critical": 0, "major": 0, "minor": 0, "warning": 0, "total": 0}
    assert board["system_peers"] == []
    [group] = board["subcloud_peer_groups"]
    assert group["peer_group_name"] == "pg-east" and group["leader-is-this-site"] is True
    assert group["subclouds"]["total_subclouds"] == 2 and group["subclouds"]["managed"] == 2
    assert group["associations"] == []


async def test_a_reader_sees_the_dashboard_and_nobody_without_a_token(api: Api) -> None:
    assert (await api.get("/v1.0/dashboard", headers={"X-Auth-Token": api.reader_token})).status_code == 200
    assert (await api.get("/v1.0/dashboard", headers={})).status_code == 401


async def test_fault_alarms_by_subcloud_and_newest_first(api: Api) -> None:
    from datetime import datetime

    from sqlalchemy import insert

    from dcman.db.tables import fault_alarms

    ids = await _fleet(api)
    async with api.ctx.engine.begin() as conn:
        for name in ("edge-a1", "edge-a2", "edge-b1"):
            await conn.execute(insert(fault_alarms).values(
                alarm_id="280.001", entity_instance_id=f"subcloud={name}", subcloud_id=ids[name],
                severity="critical", reason_text=f"{name} is offline", timestamp=datetime(2025, 1, 1)))
    mine = (await api.get("/v1.0/fault-alarms", params={"subcloud": "edge-a2"})).json()["alarms"]
    assert [a["entity_instance_id"] for a in mine] == ["subcloud=edge-a2"]
    newest = (await api.get("/v1.0/fault-alarms", params={"limit": 2})).json()["alarms"]
    assert [a["entity_instance_id"] for a in newest] == ["subcloud=edge-b1", "subcloud=edge-a2"]
    assert (await api.get("/v1.0/fault-alarms", params={"subcloud": "nope"})).status_code == 404
    assert (await api.get("/v1.0/fault-alarms", params={"limit": "0"})).status_code == 400
    assert (await api.get("/v1.0/fault-alarms", params={"severity": "critical"})).status_code == 400
    board = (await api.get("/v1.0/dashboard")).json()
    assert board["alarms"]["critical"] == 3 and board["alarms"]["total"] == 3


async def test_the_dashboard_page_and_its_files_are_served(api: Api) -> None:
    page = await api.client.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/ui/app.js">' in page.text
    assert (await api.client.get("/ui/app.js")).headers["content-type"].startswith("text/javascript")
    assert (await api.client.get("/ui/app.css")).status_code == 200
    assert (await api.client.get("/ui/../pyproject.toml")).status_code == 404
    assert (await api.client.get("/ui/secret.key")).status_code == 404
