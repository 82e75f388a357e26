"""Schemathesis against the running service's own OpenAPI document: no generated request, valid or
not, may get a 5xx (``not_a_server_error``).

The schema is fetched from ``/openapi.json`` of a real ``patron serve`` (it needs a key: the admin
key, sent as the Basic user name, which may call every operation). Every operation is exercised
with at most :data:`MAX_EXAMPLES` generated requests, all authenticated as admin. The database
holds a few events first, so profile, export and refresh have a person to work on;
``DELETE /v1/customers/{id}`` (erasure) gets generated ids, which must be answered 404 (or 4xx),
never 5xx. Any 5xx fails the test with the request as a curl command (schemathesis prints it).
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.service_support import Service, running_service

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 15
"""Valid generated requests per operation."""

NEGATIVE_EXAMPLES = 6
"""Invalid generated requests per operation (they must get a 4xx, not a 5xx). Together: about a
minute for the file on 2 cores."""


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Service:
    db = tmp_path_factory.mktemp("openapi") / "openapi.duckdb"
    with running_service(db) as svc:
        with svc.client("write") as c:
            r = c.post("/v1/batch", json={"batch": [
                {"type": "identify", "messageId": "oa-1", "userId": "u-oa", "traits": {"email": "oa@example.com"}},
                {"type": "track", "messageId": "oa-2", "userId": "u-oa", "event": "Order Completed",
                 "properties": {"order_id": "oa-order-1", "revenue": 42.0, "currency": "EUR"}},
                {"type": "page", "messageId": "oa-3", "anonymousId": "a-oa", "name": "Home"},
            ]})
            assert r.status_code == 200, r.text
        yield svc


@pytest.fixture(scope="module")
def api_schema(service: Service) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(service.url + "/openapi.json", headers=_basic(service.keys["admin"]))


def test_openapi_document_lists_the_event_endpoints(api_schema: schemathesis.BaseSchema) -> None:
    paths = set(api_schema.raw_schema["paths"])
    assert {"/v1/track", "/v1/identify", "/v1/batch", "/v1/page", "/v1/alias"} <= paths


def test_no_operation_answers_a_server_error(api_schema: schemathesis.BaseSchema, service: Service) -> None:
    """Every operation, valid requests (``POSITIVE``) and invalid ones (``NEGATIVE``): no 5xx.

    Hypothesis drives each operation's strategy (schemathesis' ``as_strategy``) instead of
    ``schema.parametrize()``, whose lazy-fixture form fails on this pytest (``'Function' object
    has no attribute '_nodeid'``); failures of every operation are gathered and reported together."""
    headers = _basic(service.keys["admin"])
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    seconds: dict[str, float] = {}
    for op in operations:
        started = time.perf_counter()
        for mode, examples in ((GenerationMode.POSITIVE, MAX_EXAMPLES), (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)):

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=service.url, headers=headers,
                                       checks=[not_a_server_error], timeout=30)

            try:
                run()
            except Unsatisfiable:  # no invalid request exists (an operation without inputs)
                continue
            except Exception as exc:  # a failing check, or hypothesis giving up on the strategy
                failures.append(f"{op.method.upper()} {op.path} ({mode.value}): {exc}"[:3000])
        seconds[f"{op.method.upper()} {op.path}"] = time.perf_counter() - started
    print(f"{len(operations)} operations (s): " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    assert not failures, "\n\n".join(failures)


def test_server_log_has_no_unhandled_error(service: Service) -> None:
    """The service logs an unhandled exception before answering 500: none may be there."""
    log = Path(service.log).read_text() if service.log else ""
    assert "unhandled error" not in log, log[-3000:]
