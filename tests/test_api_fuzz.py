"""Schemathesis against /openapi.json: generated requests for every operation (valid by the
schema and deliberately invalid) find no 5xx, no undocumented status and no response that
breaks its documented schema. Run on its own with `make fuzz-api`."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from api.app import create_app

CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance,
          checks.response_headers_conformance]


@pytest.fixture(scope="module")
def api_schema(demo_services, demo_settings, tmp_path_factory):
    app_settings = demo_settings.model_copy(update={
        "runs_db": tmp_path_factory.mktemp("runs") / "runs.sqlite3",
        "rate_limit": "100000/minute"})
    return schemathesis.openapi.from_asgi("/openapi.json",
                                          create_app(services=demo_services, settings=app_settings))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi(case):
    case.call_and_validate(checks=CHECKS)
