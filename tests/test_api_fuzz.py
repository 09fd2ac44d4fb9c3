"""Schemathesis against /openapi.json: generated requests for every operation (valid by the
schema, and deliberately invalid) find no 5xx, no undocumented status, content type or header,
and no response that breaks its documented schema. Also run alone by `make fuzz-api`."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from api.app import create_app

CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance,
          checks.response_headers_conformance]
EXAMPLES = 25  # per operation and mode


@pytest.fixture(scope="module")
def api_schema(demo_services, demo_settings, tmp_path_factory):
    app_settings = demo_settings.model_copy(update={
        "runs_db": tmp_path_factory.mktemp("runs") / "runs.sqlite3",
        "rate_limit": "100000/minute"})
    return schemathesis.openapi.from_asgi("/openapi.json",
                                          create_app(services=demo_services, settings=app_settings))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi(api_schema, mode):
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            case.call_and_validate(checks=CHECKS)

        try:
            fuzz()
        except Unsatisfiable:
            # no invalid request exists for it (no parameters, or any string is a valid id)
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as error:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
