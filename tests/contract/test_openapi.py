"""docs/api.md: schemathesis against the running service's own OpenAPI document.

Zero 5xx, and every answer matches what the document promises (codes, content types, schemas).
Auth is on and the calls carry an admin token, so every route is exercised past its guard.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.schemas import BaseOpenAPISchema

from queue_manager.domain.identity import new_token, token_hash
from tests.support.service import Service

ADMIN = new_token()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    path: Path = tmp_path_factory.mktemp("contract")
    (path / "tokens").write_text(f"schemathesis admin {token_hash(ADMIN)}\n")
    env = {"LOCAL_WORKER_ARGS": "--duration 0.3", "AUTH_TOKENS_FILE": str(path / "tokens")}
    svc = Service(path / "svc", env=env, token=ADMIN).start()
    yield svc
    svc.stop()
    svc.kill_workers()


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
