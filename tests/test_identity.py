"""Accounts and tokens: the Keystone-v3-compatible identity endpoint and the role checks."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.exceptions import Unauthorized
from keystoneauth1.identity import v3

from conftest import ADMIN_PASSWORD, ADMIN_USER, READER_PASSWORD, READER_USER, token_for


def password_auth(user: str, password: str) -> dict:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "password": password, "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}


def test_keystoneauth_gets_a_token_and_the_dcmanager_endpoint(site):
    auth = v3.Password(auth_url=site.url + "/v3", username=site.admin_user, password=site.admin_password,
                       project_name="admin", user_domain_name="Default", project_domain_name="Default")
    session = ks_session.Session(auth=auth)
    endpoint = session.get_endpoint(service_type="dcmanager", interface="public")
    assert endpoint == site.url + "/v1.0"
    listed = session.get(endpoint + "/subcloud-groups").json()
    assert listed["subcloud_groups"][0]["name"] == "Default"


def test_keystoneauth_with_a_wrong_password_is_refused(site):
    auth = v3.Password(auth_url=site.url + "/v3", username=site.admin_user, password="wrong-password",
                       project_name="admin", user_domain_name="Default", project_domain_name="Default")
    with pytest.raises(Unauthorized):
        ks_session.Session(auth=auth).get_token()


def test_version_discovery(site):
    body = httpx.get(site.url + "/v3").json()
    assert body["version"]["id"].startswith("v3") and body["version"]["status"] == "stable"


async def test_token_body_names_user_project_role_and_expiry(api):
    response = await api.client.post("/v3/auth/tokens", json=password_auth(READER_USER, READER_PASSWORD))
    assert response.status_code == 201
    token = response.json()["token"]
    assert token["user"]["name"] == READER_USER and token["project"]["name"] == "admin"
    assert [r["name"] for r in token["roles"]] == ["reader"]
    issued = datetime.fromisoformat(token["issued_at"].rstrip("Z"))
    expires = datetime.fromisoformat(token["expires_at"].rstrip("Z"))
    assert expires - issued == timedelta(seconds=86400)
    dcmanager = [s for s in token["catalog"] if s["type"] == "dcmanager"][0]
    assert {e["interface"] for e in dcmanager["endpoints"]} == {"public", "internal", "admin"}


@pytest.mark.parametrize("body, status", [
    (password_auth(ADMIN_USER, "wrong-one"), 401),
    (password_auth("nobody", "whatever1"), 401),
    ({"auth": {}}, 400),
    ({"auth": {"identity": {"methods": ["totp"]}}}, 400),
    ({"nothing": 1}, 400),
])
async def test_bad_logins_get_no_token(api, body, status):
    response = await api.client.post("/v3/auth/tokens", json=body)
    assert response.status_code == status
    assert "X-Subject-Token" not in response.headers
    error = response.json()["error"]  # Keystone's body: keystoneauth shows its message
    assert error["message"] and error["code"] == status and error["title"]


async def test_an_unknown_project_is_refused(api):
    body = password_auth(ADMIN_USER, ADMIN_PASSWORD)
    body["auth"]["scope"]["project"]["name"] = "other"
    response = await api.client.post("/v3/auth/tokens", json=body)
    assert response.status_code == 400 and "project" in response.json()["error"]["message"]


async def test_token_method_rescopes_validate_and_revoke(api):
    rescoped = await api.client.post("/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["token"], "token": {"id": api.admin_token}}}})
    assert rescoped.status_code == 201
    new_token = rescoped.headers["X-Subject-Token"]
    assert new_token != api.admin_token

    checked = await api.client.get("/v3/auth/tokens", headers={"X-Auth-Token": api.admin_token,
                                                               "X-Subject-Token": new_token})
    assert checked.status_code == 200 and checked.json()["token"]["user"]["name"] == ADMIN_USER

    revoked = await api.client.delete("/v3/auth/tokens", headers={"X-Auth-Token": api.admin_token,
                                                                  "X-Subject-Token": new_token})
    assert revoked.status_code == 204
    refused = await api.get("/v1.0/subclouds", headers={"X-Auth-Token": new_token})
    assert refused.status_code == 401
    assert (await api.get("/v1.0/subclouds")).status_code == 200  # the original token still works


async def test_every_v1_call_needs_a_valid_token(api):
    for headers in ({}, {"X-Auth-Token": "made-up"}):
        response = await api.client.get("/v1.0/subclouds", headers=headers)
        assert response.status_code == 401
        assert "token" in response.json()["error_message"]["faultstring"]


async def test_an_expired_token_is_refused(api):
    from sqlalchemy import update

    from dcman.db.tables import tokens

    async with api.ctx.engine.begin() as conn:
        await conn.execute(update(tokens).values(expires_at=datetime(2000, 1, 1)))
    response = await api.get("/v1.0/subclouds")
    assert response.status_code == 401 and "expired" in response.json()["error_message"]["faultstring"]


async def test_system_identity_is_a_stable_uuid_and_name(api):
    first = (await api.get("/v1.0/system")).json()
    assert first["name"] == "test-site" and len(first["uuid"]) == 36
    assert (await api.get("/v1.0/system")).json() == first


def test_reader_account_created_by_the_cli_can_read_only(site):
    import subprocess

    from conftest import DCMAN

    env = site.env()
    created = subprocess.run([DCMAN, "user", "create", "ops", "--role", "reader", "--password", "ops-Secret-1"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    listed = subprocess.run([DCMAN, "user", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert "ops\treader" in listed.stdout

    token = token_for(site, "ops", "ops-Secret-1")
    headers = {"X-Auth-Token": token}
    assert httpx.get(site.url + "/v1.0/subclouds", headers=headers).status_code == 200
    refused = httpx.post(site.url + "/v1.0/subcloud-groups", headers=headers, json={
        "name": "ReaderGroup", "description": "x", "update_apply_type": "serial", "max_parallel_subclouds": 1})
    assert refused.status_code == 403

    again = subprocess.run([DCMAN, "user", "create", "ops", "--role", "reader", "--password", "ops-Secret-1"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and "already exists" in again.stderr and "Traceback" not in again.stderr

    deleted = subprocess.run([DCMAN, "user", "delete", "ops"], env=env, capture_output=True, text=True, timeout=60)
    assert deleted.returncode == 0
    # Deleting the account revokes its tokens at once.
    assert httpx.get(site.url + "/v1.0/subclouds", headers=headers).status_code == 401


def test_user_cli_rejects_bad_input_with_one_line(site):
    import subprocess

    from conftest import DCMAN

    for args, words in ((["create", "x", "--role", "boss", "--password", "long-enough"], "boss"),
                        (["create", "shorty", "--role", "admin", "--password", "short"], "at least 8"),
                        (["delete", "nobody"], "No account"),
                        (["delete", ADMIN_USER], "last admin")):
        result = subprocess.run([DCMAN, "user", *args], env=site.env(), capture_output=True, text=True, timeout=60)
        assert result.returncode != 0 and words in result.stderr and "Traceback" not in result.stderr
