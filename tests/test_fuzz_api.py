"""No request built from the OpenAPI schema, with random (valid and invalid) values, may
produce a 500: schemathesis cases sent to a real `dcman serve` process of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from conftest import start_site_process, stop_site_process, token_for


def _openapi() -> dict:
    from dcman.api.app import create_app
    from dcman.config import load_settings

    return create_app(load_settings(data_dir=Path("/nonexistent"))).openapi()


SCHEMA = schemathesis.openapi.from_dict(_openapi())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
# Invalid values exist only where there is a body to get wrong; paths take any string.
CASES = [(op, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (op, GenerationMode.NEGATIVE) for op in OPERATIONS if len(op.body) > 0
]


@pytest.fixture(scope="module")
def fuzz_site(tmp_path_factory):
    running = start_site_process(tmp_path_factory.mktemp("fuzz-site"))
    yield running
    stop_site_process(running)


@pytest.mark.parametrize("operation, mode", CASES, ids=[f"{mode.value} {op.label}" for op, mode in CASES])
def test_no_request_produces_a_server_error(fuzz_site, operation, mode):
    token = token_for(fuzz_site)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def send(case):
        response = case.call(base_url=fuzz_site.url, headers={"X-Auth-Token": token}, timeout=30)
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
        if response.status_code >= 400:
            body = response.json()  # Keystone's error body on /v3, the reference's on /v1.0
            sentence = body["error"]["message"] if case.formatted_path.startswith("/v3") else \
                body["error_message"]["faultstring"]
            assert sentence, response.text

    send()
