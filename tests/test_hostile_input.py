"""Inputs that broke naive code: unicode digits, NUL characters, ids past 64 bits.
Each gets a clear 4xx, never a 500, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from conftest import add_form, bootstrap_values


@pytest.mark.parametrize("ref", ["²", "a%00b", "99999999999999999999", "١٢"])
@pytest.mark.parametrize("collection", ["subclouds", "subcloud-groups"])
async def test_odd_references_are_simply_not_found(api, collection, ref):
    response = await api.get(f"/v1.0/{collection}/{ref}")
    assert response.status_code == 404, response.text


async def test_nul_in_a_json_field_is_refused(api):
    response = await api.post("/v1.0/subcloud-groups", json={
        "name": "a\x00", "description": "d", "update_apply_type": "serial", "max_parallel_subclouds": 1})
    assert response.status_code == 400 and "NUL" in response.json()["error_message"]["faultstring"]


@pytest.mark.parametrize("form", [
    lambda: add_form("x", bootstrap_values("x\x00y")),
    lambda: add_form("nul1", description="x\x00"),
])
async def test_nul_in_an_upload_is_refused_and_nothing_is_added(api, form):
    data, files = form()
    response = await api.post("/v1.0/subclouds", data=data, files=files)
    assert response.status_code == 400 and "NUL" in response.json()["error_message"]["faultstring"]
    assert await api.subclouds() == []


@pytest.mark.parametrize("part", ["install_values", "bootstrap_values"])
async def test_nul_in_an_update_upload_is_refused_and_nothing_changes(api, part):
    await api.add_subcloud("nul2")
    before = (await api.get("/v1.0/subclouds/nul2")).json()
    response = await api.patch("/v1.0/subclouds/nul2", data={"bootstrap_address": "10.10.10.30"},
                               files={part: ("v.yaml", b"name: \"a\\0b\"\n", "application/x-yaml")})
    assert response.status_code == 400, response.text
    assert "NUL" in response.json()["error_message"]["faultstring"]
    assert (await api.get("/v1.0/subclouds/nul2")).json() == before


@pytest.mark.parametrize("values", [[1, 2], "[", {"install_type": {"deep": [None]}}, {"bmc_password": 7}])
async def test_odd_install_values_in_a_json_update_are_refused(api, values):
    await api.add_subcloud("odd1")
    response = await api.patch("/v1.0/subclouds/odd1", json={"install_values": values})
    assert response.status_code == 400, response.text
    assert (await api.get("/v1.0/subclouds/odd1")).json()["data_install"] is None


async def test_a_busy_database_pool_answers_503_with_retry_after_never_500(api):
    """Every connection of the pool held (by a flood): a call waits the pool timeout, then 503."""
    if api.backend != "sqlite":
        pytest.skip("one backend is enough: the pool behaves alike")
    pool = api.ctx.engine.pool
    held = [await api.ctx.engine.connect() for _ in range(pool.size() + pool._max_overflow)]
    try:
        response = await api.get("/v1.0/subclouds")
    finally:
        for conn in held:
            await conn.close()
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "2"
    assert "busy" in response.json()["error_message"]["faultstring"]
    assert (await api.get("/v1.0/subclouds")).status_code == 200
