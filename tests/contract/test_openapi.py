"""docs/api.md: schemathesis against the running service's own OpenAPI document.

Zero 5xx, and every answer matches what the document promises (codes, content types, schemas),
for every operation and every body the document describes — queues, backfills (their own model),
schedules, auth. Auth is on and the calls carry an admin token, so every route is exercised past
its guard. Sequences of calls are fuzzed in test_stateful.py.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.schemas import BaseOpenAPISchema

from tests.contract.conftest import ADMIN
from tests.support.service import Service


@pytest.fixture(scope="module")
def api_schema(running: Service) -> BaseOpenAPISchema:
    # FastAPI publishes OpenAPI 3.1, which schemathesis 3.x reads behind this switch.
    schemathesis.experimental.OPEN_API_3_1.enable()
    return schemathesis.from_uri(f"{running.url}/openapi.json", base_url=running.url)


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_keeps_its_openapi_promises(case: schemathesis.Case) -> None:
    case.call_and_validate(timeout=30, headers={"Authorization": f"Bearer {ADMIN}"})
