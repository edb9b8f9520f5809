"""Subcloud groups (lifecycle reference §2.7) through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

GROUP = {"name": "GroupX", "description": "A new group", "update_apply_type": "parallel",
         "max_parallel_subclouds": 3}


async def groups(api) -> list[dict]:
    response = await api.get("/v1.0/subcloud-groups")
    assert response.status_code == 200
    return response.json()["subcloud_groups"]


def fault(response) -> str:
    return response.json()["error_message"]["faultstring"]


async def test_a_new_site_has_only_the_default_group(api):
    assert [(g["id"], g["name"], g["description"], g["update_apply_type"], g["max_parallel_subclouds"])
            for g in await groups(api)] == [(1, "Default", "Default Subcloud Group", "parallel", 2)]


async def test_create_show_update_and_delete_a_group(api):
    created = await api.post("/v1.0/subcloud-groups", json=GROUP)
    assert created.status_code == 200, created.text
    group = created.json()
    assert group["id"] == 2 and group["name"] == "GroupX" and group["max_parallel_subclouds"] == 3
    assert (await api.get("/v1.0/subcloud-groups/GroupX")).json() == group
    assert (await api.get("/v1.0/subcloud-groups/2")).json() == group

    updated = await api.patch("/v1.0/subcloud-groups/GroupX",
                              json={"description": "Moved", "update_apply_type": "serial", "max_parallel_subclouds": 5})
    assert updated.status_code == 200, updated.text
    shown = (await api.get("/v1.0/subcloud-groups/2")).json()
    assert (shown["description"], shown["update_apply_type"], shown["max_parallel_subclouds"]) == ("Moved", "serial", 5)
    assert shown["updated-at"] is not None

    assert (await api.delete("/v1.0/subcloud-groups/GroupX")).status_code == 200
    assert [g["name"] for g in await groups(api)] == ["Default"]
    assert (await api.get("/v1.0/subcloud-groups/GroupX")).status_code == 404


@pytest.mark.parametrize(
    "change, status, words",
    [
        ({"name": ""}, 400, "non-empty"),
        ({"name": "12345"}, 400, "digits"),
        ({"name": "a" * 256}, 400, "255"),
        ({"name": "bad(name)"}, 400, "characters"),
        ({"name": "default"}, 400, "reserved"),
        ({"name": None}, 400, "required"),
        ({"description": ""}, 400, "description"),
        ({"description": "d" * 255}, 400, "shorter than 255"),
        ({"update_apply_type": "random"}, 400, "parallel or serial"),
        ({"max_parallel_subclouds": 0}, 400, "1 to 5000"),
        ({"max_parallel_subclouds": 5001}, 400, "1 to 5000"),
        ({"max_parallel_subclouds": "many"}, 400, "integer"),
        ({"max_parallel_subclouds": True}, 400, "integer"),
        ({"colour": "red"}, 400, "Unknown"),
    ],
)
async def test_create_rejects_bad_fields_and_creates_nothing(api, change, status, words):
    response = await api.post("/v1.0/subcloud-groups", json={**GROUP, **change})
    assert response.status_code == status, response.text
    assert words in fault(response)
    assert [g["name"] for g in await groups(api)] == ["Default"]


async def test_duplicate_group_name_is_a_conflict(api):
    await api.post("/v1.0/subcloud-groups", json=GROUP)
    response = await api.post("/v1.0/subcloud-groups", json={**GROUP, "name": "groupx"})
    assert response.status_code == 409
    assert "already exists" in fault(response)
    assert [g["name"] for g in await groups(api)] == ["Default", "GroupX"]


async def test_update_needs_a_field_and_validates_it(api):
    await api.post("/v1.0/subcloud-groups", json=GROUP)
    before = await groups(api)
    for body, words in [({}, "Nothing to update"), ({"max_parallel_subclouds": -1}, "1 to 5000"),
                        ({"update_apply_type": "x"}, "parallel or serial")]:
        response = await api.patch("/v1.0/subcloud-groups/GroupX", json=body)
        assert response.status_code == 400 and words in fault(response)
    assert await groups(api) == before


async def test_default_group_cannot_be_renamed_or_deleted(api):
    before = await groups(api)
    renamed = await api.patch("/v1.0/subcloud-groups/Default", json={"name": "Other"})
    assert renamed.status_code == 400 and "cannot be renamed" in fault(renamed)
    deleted = await api.delete("/v1.0/subcloud-groups/1")
    assert deleted.status_code == 400 and "cannot be deleted" in fault(deleted)
    assert await groups(api) == before
    # Its other fields may change.
    assert (await api.patch("/v1.0/subcloud-groups/Default", json={"max_parallel_subclouds": 10})).status_code == 200


async def test_a_group_with_subclouds_cannot_be_deleted_and_lists_its_members(api):
    await api.post("/v1.0/subcloud-groups", json=GROUP)
    await api.add_subcloud("edge1", group_id="GroupX")
    await api.add_subcloud("edge2")
    members = await api.get("/v1.0/subcloud-groups/GroupX/subclouds")
    assert [s["name"] for s in members.json()["subclouds"]] == ["edge1"]
    default_members = await api.get("/v1.0/subcloud-groups/Default/subclouds")
    assert [s["name"] for s in default_members.json()["subclouds"]] == ["edge2"]

    response = await api.delete("/v1.0/subcloud-groups/GroupX")
    assert response.status_code == 400 and "not empty" in fault(response)
    assert [g["name"] for g in await groups(api)] == ["Default", "GroupX"]


async def test_unknown_group_is_404_everywhere(api):
    for call in (api.get("/v1.0/subcloud-groups/nope"), api.patch("/v1.0/subcloud-groups/nope", json={"description": "x"}),
                 api.delete("/v1.0/subcloud-groups/99"), api.get("/v1.0/subcloud-groups/nope/subclouds")):
        response = await call
        assert response.status_code == 404 and "not found" in fault(response)


async def test_a_reader_sees_groups_but_cannot_change_them(api):
    reader = {"X-Auth-Token": api.reader_token}
    assert (await api.get("/v1.0/subcloud-groups", headers=reader)).status_code == 200
    response = await api.post("/v1.0/subcloud-groups", json=GROUP, headers=reader)
    assert response.status_code == 403 and "reader" in fault(response)
    assert [g["name"] for g in await groups(api)] == ["Default"]
