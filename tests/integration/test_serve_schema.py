"""schemathesis against the service's own OpenAPI schema: generated requests to every
operation, valid ones (positive) and invalid ones (negative), sent with a key of every scope
and checked by schemathesis's default checks: no 5xx (``not_a_server_error``), status codes,
content types and bodies as the schema documents them, invalid data rejected.

A body can be valid for the schema and still larger than the service's byte limit, or
invalid and too large at once: the 413 that answers it is a rejection that schemathesis's
acceptance / rejection checks do not list, so those two checks (only) are left out for 413s.

(schemathesis's lazy pytest fixture, ``schemathesis.pytest.from_fixture``, does not run
under pytest 9, so each operation's Hypothesis strategy is driven here directly.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from mtlrec.serving.app import create_app
from mtlrec.serving.settings import ServeSettings
from serving_support import TinyServing

OPERATIONS = [
    ("/v1/recommend", "POST"),
    ("/v1/score", "POST"),
    ("/v1/items/{item_id}/similar", "GET"),
    ("/v1/users", "GET"),
    ("/v1/users/{user_id}/history", "GET"),
    ("/v1/admin/reload", "POST"),
    ("/healthz", "GET"),
    ("/readyz", "GET"),
    ("/metrics", "GET"),
]


@pytest.fixture(scope="module")
def api_schema(tiny_serving: TinyServing) -> schemathesis.BaseSchema:
    app = create_app(ServeSettings(artifact=tiny_serving.fused, api_keys=tiny_serving.key_file))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_is_exercised(api_schema: schemathesis.BaseSchema) -> None:
    found = {(op.ok().path, op.ok().method.upper()) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


WITHOUT_PARAMETERS = {"/healthz", "/readyz", "/metrics"}  # nothing to make invalid
CASES = [
    pytest.param(path, method, mode, id=f"{method} {path} {mode.value}")
    for path, method in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or path not in WITHOUT_PARAMETERS
]
SIZE_LIMITED = [negative_data_rejection, positive_data_acceptance]


@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_api_answers_as_documented(
    api_schema: schemathesis.BaseSchema,
    tiny_serving: TinyServing,
    path: str,
    method: str,
    mode: GenerationMode,
) -> None:
    operation = api_schema[path][method]
    key = {"X-API-Key": tiny_serving.keys["all"]}
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=15,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call(headers=key)
        excluded = SIZE_LIMITED if response.status_code == 413 else None
        case.validate_response(response, headers=key, excluded_checks=excluded)
        statuses.append(response.status_code)
        assert response.status_code < 500, response.text

    check()
    assert statuses and max(statuses) < 500
