"""The phased deploy API's preconditions (lifecycle reference §2.3.2), checked in-process on
SQLite and PostgreSQL without the deploy loop: each refusal changes nothing."""

from __future__ import annotations

import base64

import pytest

from conftest import add_form, bootstrap_values

INSTALL = """\
bootstrap_interface: eno1
bootstrap_address: 10.10.10.12
bootstrap_address_prefix: 24
install_type: 0
bmc_username: root
bmc_address: 10.20.0.2
bmc_password: Ym1jLXNlY3JldA==
"""


def fault(response) -> str:
    return response.json()["error_message"]["faultstring"]


async def created(api, name: str = "edge1", **state) -> dict:
    data, files = add_form(name)
    response = await api.post("/v1.0/phased-subcloud-deploy", data=data, files=files)
    assert response.status_code == 200, response.text
    await api.set_state(name, deploy_status=state.pop("deploy_status", "create-complete"), **state)
    return response.json()


async def refused(api, path: str, status: int, words: str, **kw) -> None:
    before = await api.subclouds()
    response = await api.patch(path, **kw)
    assert response.status_code == status, response.text
    assert words in fault(response)
    assert await api.subclouds() == before


async def shown(api, name: str = "edge1") -> dict:
    return (await api.get(f"/v1.0/subclouds/{name}")).json()


async def test_create_stops_before_any_phase(api):
    body = await created(api, deploy_status="not-deployed")
    assert body["deploy-status"] == "not-deployed"
    await refused(api, "/v1.0/phased-subcloud-deploy/edge1/bootstrap", 422, "cannot start bootstrap", json={})


async def test_install_needs_install_values_then_starts_pre_install(api):
    await created(api)
    await refused(api, "/v1.0/phased-subcloud-deploy/edge1/install", 400, "needs install values", json={})
    response = await api.patch("/v1.0/phased-subcloud-deploy/edge1/install", json={"install_values": INSTALL})
    assert response.status_code == 200, response.text
    assert response.json()["deploy-status"] == "pre-install"
    assert "bmc_password" not in response.json()["data_install"]


async def test_install_as_multipart_form_like_the_dcmanager_client(api):
    await created(api)
    response = await api.patch("/v1.0/phased-subcloud-deploy/edge1/install",
                               files={"install_values": ("install.yaml", INSTALL.encode())},
                               data={"sysadmin_password": base64.b64encode(b"new-password").decode()})
    assert response.status_code == 200, response.text
    assert response.json()["deploy-status"] == "pre-install"


async def test_bootstrap_with_new_values_must_keep_the_name_and_pass_the_network_rules(api):
    await created(api)
    await created(api, "edge2")
    other = (await shown(api, "edge2"))
    await refused(api, "/v1.0/phased-subcloud-deploy/edge1/bootstrap", 400, "must be the subcloud's name",
                  json={"bootstrap_values": "name: someone-else\n"})
    clash = bootstrap_values("edge1", management_subnet=other["management-subnet"],
                             management_start_address=other["management-start-ip"],
                             management_end_address=other["management-end-ip"],
                             management_gateway_address=other["management-gateway-ip"])
    import yaml

    await refused(api, "/v1.0/phased-subcloud-deploy/edge1/bootstrap", 400, "overlaps",
                  json={"bootstrap_values": yaml.safe_dump(clash)})
    fresh = bootstrap_values("edge1")
    response = await api.patch("/v1.0/phased-subcloud-deploy/edge1/bootstrap",
                               json={"bootstrap_values": yaml.safe_dump(fresh)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["deploy-status"] == "pre-bootstrap"
    assert body["management-start-ip"] == fresh["management_start_address"]


@pytest.mark.parametrize("state", ["create-complete", "install-complete", "installing", "complete"])
async def test_complete_only_from_bootstrap_complete(api, state):
    await created(api, deploy_status=state)
    await refused(api, "/v1.0/phased-subcloud-deploy/edge1/complete", 422, "cannot start complete", json={})


async def test_complete_from_bootstrap_complete(api):
    await created(api, deploy_status="bootstrap-complete")
    response = await api.patch("/v1.0/phased-subcloud-deploy/edge1/complete", json={})
    assert response.status_code == 200 and response.json()["deploy-status"] == "complete"


async def test_configure_needs_a_deploy_config_and_a_configurable_state(api):
    await created(api)
    await refused(api, "/v1.0/phased-subcloud-deploy/edge1/configure", 422, "cannot start config",
                  json={"deploy_config": "a: 1\n"})
    await api.set_state("edge1", deploy_status="bootstrap-complete")
    await refused(api, "/v1.0/phased-subcloud-deploy/edge1/configure", 400, "needs a deploy_config", json={})
    response = await api.patch("/v1.0/phased-subcloud-deploy/edge1/configure", json={"deploy_config": "a: 1\n"})
    assert response.status_code == 200 and response.json()["deploy-status"] == "pre-config"


@pytest.mark.parametrize("running, aborting", [
    ("installing", "aborting-install"), ("bootstrapping", "aborting-bootstrap"), ("configuring", "aborting-config")])
async def test_abort_while_a_phase_runs(api, running, aborting):
    await created(api, deploy_status=running)
    response = await api.patch("/v1.0/phased-subcloud-deploy/edge1/abort", json={})
    assert response.status_code == 200 and response.json()["deploy-status"] == aborting


@pytest.mark.parametrize("state", ["create-complete", "complete", "install-failed", "aborting-install"])
async def test_abort_refused_when_nothing_runs(api, state):
    await created(api, deploy_status=state)
    await refused(api, "/v1.0/phased-subcloud-deploy/edge1/abort", 422, "only while", json={})


@pytest.mark.parametrize("state, first", [
    ("install-failed", "pre-bootstrap"),  # no install values stored: install is skipped
    ("bootstrap-aborted", "pre-bootstrap"),
    ("pre-config-failed", "complete"),  # no deploy config: config becomes complete
])
async def test_resume_runs_what_remains(api, state, first):
    await created(api, deploy_status=state)
    response = await api.patch("/v1.0/phased-subcloud-deploy/edge1/resume", json={})
    assert response.status_code == 200, response.text
    assert response.json()["deploy-status"] == first


@pytest.mark.parametrize("state", ["complete", "installing", "not-deployed"])
async def test_resume_refused_from_other_states(api, state):
    await created(api, deploy_status=state)
    await refused(api, "/v1.0/phased-subcloud-deploy/edge1/resume", 422, "cannot be resumed", json={})


async def test_redeploy_only_offline_unmanaged_and_with_install_values(api):
    await created(api, deploy_status="complete", availability_status="online")
    await refused(api, "/v1.0/subclouds/edge1/redeploy", 422, "offline and unmanaged", json={"install_values": INSTALL})
    await api.set_state("edge1", availability_status="offline", management_state="managed")
    await refused(api, "/v1.0/subclouds/edge1/redeploy", 422, "offline and unmanaged", json={"install_values": INSTALL})
    await api.set_state("edge1", management_state="unmanaged")
    await refused(api, "/v1.0/subclouds/edge1/redeploy", 400, "needs install values", json={})
    response = await api.patch("/v1.0/subclouds/edge1/redeploy", json={"install_values": INSTALL})
    assert response.status_code == 200, response.text
    assert response.json()["deploy-status"] == "pre-install"


async def test_a_subcloud_in_a_running_phase_cannot_be_deleted(api):
    await created(api, deploy_status="bootstrapping")
    before = await api.subclouds()
    response = await api.delete("/v1.0/subclouds/edge1")
    assert response.status_code == 422 and "bootstrapping" in fault(response)
    assert await api.subclouds() == before


async def test_unknown_subcloud_is_404_for_every_verb(api):
    for verb in ("install", "bootstrap", "configure", "complete", "abort", "resume"):
        response = await api.patch(f"/v1.0/phased-subcloud-deploy/nope/{verb}", json={})
        assert response.status_code == 404


async def test_a_new_bmc_password_applies_to_the_stored_install_values(api):
    await created(api)
    await refused(api, "/v1.0/phased-subcloud-deploy/edge1/install", 400, "no install values",
                  json={"bmc_password": base64.b64encode(b"other").decode()})
    await api.patch("/v1.0/phased-subcloud-deploy/edge1/install", json={"install_values": INSTALL})
    await api.set_state("edge1", deploy_status="install-failed")
    response = await api.patch("/v1.0/phased-subcloud-deploy/edge1/install",
                               json={"bmc_password": base64.b64encode(b"other").decode()})
    assert response.status_code == 200, response.text
    assert response.json()["deploy-status"] == "pre-install"
    assert "bmc_password" not in response.json()["data_install"]
