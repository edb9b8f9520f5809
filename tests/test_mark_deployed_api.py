"""PATCH deploy-status=complete: the documented stand-in for the deploy phases, which marks a
created subcloud deployed so that the audit watches it."""

from __future__ import annotations

import pytest


def fault(response) -> str:
    return response.json()["error_message"]["faultstring"]


async def test_a_created_subcloud_can_be_marked_complete(api):
    await api.add_subcloud("edge1")
    await api.set_state("edge1", deploy_status="create-complete")
    response = await api.patch("/v1.0/subclouds/edge1", json={"deploy-status": "complete"})
    assert response.status_code == 200, response.text
    assert (await api.get("/v1.0/subclouds/edge1")).json()["deploy-status"] == "complete"


@pytest.mark.parametrize("state, body, status, words", [
    ("not-deployed", {"deploy-status": "complete"}, 422, "only from create-complete"),
    ("create-failed", {"deploy-status": "complete"}, 422, "only from create-complete"),
    ("create-complete", {"deploy-status": "installing"}, 400, "only be set to complete"),
    ("create-complete", {"deploy-status": "complete", "management-state": "managed", "force": "true"}, 422,
     "unmanaged"),
])
async def test_marking_complete_is_refused_otherwise_and_changes_nothing(api, state, body, status, words):
    await api.add_subcloud("edge1")
    await api.set_state("edge1", deploy_status=state)
    before = await api.subclouds()
    response = await api.patch("/v1.0/subclouds/edge1", json=body)
    assert response.status_code == status, response.text
    assert words in fault(response)
    assert await api.subclouds() == before
