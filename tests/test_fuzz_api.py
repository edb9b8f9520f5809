"""The site answers as /openapi.json says: schemathesis cases built from the schema, valid and
invalid, are sent to a real `dcman serve` process of its own, on SQLite and on PostgreSQL, and
every answer goes through all of schemathesis's checks: no server error, only declared status
codes, headers and content types, answers matching their schema, invalid data refused, valid
data accepted, the token enforced, and 405 with `Allow` for an undeclared method."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from conftest import SITE_BACKENDS, site_database, start_site_process, stop_site_process, token_for

EXAMPLES = 6  # per operation and mode: the suite stays short, and each run draws new cases


def _openapi() -> dict:
    from dcman.api.app import create_app
    from dcman.config import load_settings

    return create_app(load_settings(data_dir=Path("/nonexistent"))).openapi()


load_all_checks()
ALL_CHECKS = CHECKS.get_all()
POSITIVE_DATA_ACCEPTANCE = CHECKS.get_one("positive_data_acceptance")
SCHEMA = schemathesis.openapi.from_dict(_openapi())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
# Invalid values exist only where there is something to get wrong: a parameter or a body.
CASES = [(op, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (op, GenerationMode.NEGATIVE) for op in OPERATIONS
    if len(op.body) > 0 or any(True for _ in op.iter_parameters())]
# What no schema can say: these take YAML documents (bootstrap and install values, deploy
# configs) whose network and install rules are checked once parsed, or act on state the case
# cannot know. A well-formed case may thus be refused, with 400 or 422 and one sentence (the
# declared error body), but must never get anything else undeclared.
REFUSED_BY_CONTENT = {
    "POST /v1.0/peer-group-associations",  # its group and peer must exist (else 400, as in the reference)
    "POST /v1.0/subclouds", "PATCH /v1.0/subclouds/{subcloud_ref}", "POST /v1.0/phased-subcloud-deploy",
    *(f"PATCH /v1.0/phased-subcloud-deploy/{{subcloud_ref}}/{verb}"
      for verb in ("install", "bootstrap", "configure", "complete", "resume")),
    "PATCH /v1.0/subclouds/{subcloud_ref}/redeploy",
    # A prestage needs its subcloud managed, online and deployed: a valid body alone may be a 400.
    "PATCH /v1.0/subclouds/{subcloud_ref}/prestage", "POST /v1.0/subclouds/{subcloud_ref}/prestage",
    # A backup names its subcloud or group in the body and needs it deployed, managed and online
    # (restore: unmanaged): an unknown subcloud is a 400, as in the reference.
    "POST /v1.0/subcloud-backup", "PATCH /v1.0/subcloud-backup/delete/{release}", "PATCH /v1.0/subcloud-backup/restore",
    # Names refuse control and format characters: the schema states it (an allOf pattern), but
    # the case generator follows only a field's own pattern, so a case may still hold one.
    *(f"{method} /v1.0/{kind}" for method, kind in (
        ("POST", "subcloud-groups"), ("PATCH", "subcloud-groups/{group_ref}"), ("POST", "system-peers"),
        ("PATCH", "system-peers/{peer_ref}"), ("POST", "subcloud-peer-groups"),
        ("PATCH", "subcloud-peer-groups/{group_ref}"))),
}


@pytest.fixture(scope="module", params=SITE_BACKENDS)
def fuzz_site(request, tmp_path_factory):
    """A site and an admin token for it (one login: bcrypt costs a fifth of a second)."""
    with site_database(request.param) as database:
        running = start_site_process(tmp_path_factory.mktemp(f"fuzz-{request.param}"), database)
        try:
            yield running, token_for(running)
        finally:
            stop_site_process(running)


@pytest.mark.parametrize("operation, mode", CASES, ids=[f"{mode.value} {op.label}" for op, mode in CASES])
def test_every_answer_is_the_declared_one(fuzz_site, operation, mode):
    site, token = fuzz_site
    excluded = [POSITIVE_DATA_ACCEPTANCE] if operation.label in REFUSED_BY_CONTENT else []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def send(case):
        response = case.call_and_validate(base_url=site.url, headers={"X-Auth-Token": token}, timeout=30,
                                          checks=ALL_CHECKS, excluded_checks=excluded)
        if response.status_code >= 400:
            body = response.json()  # Keystone's error body on /v3, the reference's on /v1.0
            sentence = body["error"]["message"] if case.formatted_path.startswith("/v3") else \
                body["error_message"]["faultstring"]
            assert sentence, response.text
        if excluded and mode is GenerationMode.POSITIVE:
            assert response.status_code < 400 or response.status_code in (400, 401, 403, 404, 409, 413, 422), \
                response.text

    send()


def test_every_operation_declares_its_answers():
    """The schema the run above holds the site to: a schema for each success, and the errors
    any operation of its kind can answer."""
    for path, operations in SCHEMA.raw_schema["paths"].items():
        for method, operation in operations.items():
            declared = operation["responses"]
            success = [code for code in declared if code.startswith("2")]
            if (method, path) == ("patch", "/v1.0/subcloud-backup/delete/{release}"):
                # The reference's two answers: 204 when every backup went, 207 with a notice.
                assert success == ["204", "207"], success
                success = ["207"]
            assert len(success) == 1, (method, path)
            if method != "delete":
                assert declared[success[0]]["content"]["application/json"]["schema"], (method, path)
            errors = {code for code in declared if not code.startswith("2")}
            body = "KeystoneErrorBody" if path.startswith("/v3") else "ErrorBody"  # what each caller reads
            assert all(declared[code]["content"]["application/json"]["schema"] == {
                "$ref": f"#/components/schemas/{body}"} for code in errors), (method, path)
            if path.startswith("/v1.0/"):
                assert {"401", "503"} <= errors and operation["security"], (method, path)
                if method != "get":
                    assert {"400", "403"} <= errors, (method, path)
                if "{" in path:
                    assert "404" in errors, (method, path)
            assert "422" not in errors or "HTTPValidationError" not in str(declared["422"]), (method, path)


def test_an_undeclared_method_answers_405_naming_every_method_the_path_takes(fuzz_site):
    site, token = fuzz_site
    for method, path, allowed in [("PUT", "/v1.0/subclouds", "GET, POST"),
                                  ("POST", "/v1.0/subclouds/edge-1", "DELETE, GET, PATCH"),
                                  ("OPTIONS", "/v1.0/subcloud-groups/", "GET, POST"),
                                  ("HEAD", "/v1.0/system", "GET"),
                                  ("PUT", "/v3/auth/tokens", "DELETE, GET, POST")]:
        answer = httpx.request(method, site.url + path, headers={"X-Auth-Token": token}, timeout=10)
        assert answer.status_code == 405 and answer.headers["Allow"] == allowed, (method, path, answer.headers)
        if method != "HEAD":
            body = answer.json()  # Keystone's error body on /v3, the reference's on /v1.0
            assert allowed in (body["error"]["message"] if path.startswith("/v3") else
                               body["error_message"]["faultstring"])
