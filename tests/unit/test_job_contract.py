"""The job contract is one agreement (docs/pipelines.md, docs/worker-protocol.md): what the
service puts in a job's environment is what the worker SDK reads, and every target and step
parameter the service accepts is one a job can be given."""

from __future__ import annotations

from datetime import date

import pytest

from queue_manager.domain.models import QueueState
from queue_manager.domain.planner import plan
from queue_manager.domain.requests import PipelineCreate, StepRequest
from queue_manager.job_contract import (
    ARANGO_SECRET_KEYS,
    KAFKA_SECRET_KEYS,
    PARAMETER_ENV,
    PLATFORM_ALIASES,
    REQUIRED_PARAMETERS,
    SECRET_ENV,
    TARGETS,
    Env,
    Target,
    missing_parameters,
    parse_time_range,
)
from queue_manager.services.job_specs import JobConfig, job_spec
from queue_manager.settings import Settings
from queue_manager.worker.env import WorkerEnv
from queue_manager.worker.reference import build_parser

QUEUE_ID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"


def _worker_variables() -> set[str]:
    return {str(field.validation_alias) for field in WorkerEnv.model_fields.values()}


def _full_pipeline() -> QueueState:
    request = PipelineCreate.model_validate(
        {
            "symbol": "BTCUSDT",
            "time_range": "2024-01-01:2024-01-02",
            "requests": [
                {"target": "loader-producer", "type": "api_candles_5m", "interval": "5m"},
                {"target": "arango-connector", "type": "api_candles_5m"},
                {
                    "target": "graph-builder",
                    "type": "graph",
                    "collection_inputs": ["btc_candles_5m_2024_01_01_2024_01_02"],
                    "collection_output": "btc_graph",
                },
                {
                    "target": "gnn-trainer",
                    "type": "gnn",
                    "graph_collection": "btc_graph",
                    "model_output": "btc_model",
                    "inference_interval": "1h",
                },
                {"target": "visualizer", "type": "viz", "source": "btc_model"},
            ],
        }
    )
    return plan(request, QUEUE_ID)


def test_every_variable_a_job_gets_is_one_the_sdk_reads() -> None:
    queue = _full_pipeline()
    config = JobConfig(images={t: f"img/{t}" for t in TARGETS}, ca_path="/etc/ca/ca.crt")
    given = {name for step in queue.steps for name in job_spec(queue, step, config).env}
    # The rest are the platform's workers' names for variables the SDK reads under its own.
    assert given - _worker_variables() <= set(PLATFORM_ALIASES)
    assert set(PLATFORM_ALIASES.values()) <= _worker_variables()


def test_every_job_gets_the_telemetry_topic_and_the_ca_path() -> None:
    queue = _full_pipeline()
    config = JobConfig(
        images={t: f"img/{t}" for t in TARGETS}, events_topic="ev", ca_path="/etc/ca/ca.crt"
    )
    for step in queue.steps:
        env = job_spec(queue, step, config).env
        assert env[Env.TELEMETRY_TOPIC] == env[Env.QUEUE_EVENTS_TOPIC] == "ev"
        assert env[Env.CA_PATH] == "/etc/ca/ca.crt"
    # No CA (PLAINTEXT, or the system's CAs): no CA_PATH at all, rather than an empty one.
    plain = JobConfig(images={t: f"img/{t}" for t in TARGETS})
    assert all(Env.CA_PATH not in job_spec(queue, s, plain).env for s in queue.steps)


def test_the_platform_credential_names_are_the_same_secret_keys_and_secret() -> None:
    keys = {**KAFKA_SECRET_KEYS, **ARANGO_SECRET_KEYS}
    credentials = {
        Env.KAFKA_USER_PRODUCER, Env.KAFKA_PASSWORD_PRODUCER,
        Env.KAFKA_USER_CONSUMER, Env.KAFKA_PASSWORD_CONSUMER,
    }  # fmt: skip
    assert credentials <= set(KAFKA_SECRET_KEYS)
    for name, sdk_name in PLATFORM_ALIASES.items():
        if sdk_name in keys:
            assert keys[name] == keys[sdk_name], name
        assert (name in SECRET_ENV) == (sdk_name in SECRET_ENV), name
    assert {Env.KAFKA_PASSWORD_PRODUCER, Env.KAFKA_PASSWORD_CONSUMER} <= SECRET_ENV
    # A credential never travels as a literal: no variable of a job's env is a Secret's.
    queue = _full_pipeline()
    config = JobConfig(images={t: f"img/{t}" for t in TARGETS})
    assert not {n for s in queue.steps for n in job_spec(queue, s, config).env} & set(keys)


def test_the_job_contract_imports_nothing_of_ours_nor_third_party() -> None:
    import ast
    import sys
    from pathlib import Path

    import queue_manager.job_contract as contract

    tree = ast.parse(Path(contract.__file__).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    roots = {name.split(".")[0] for name in imported}
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}, roots


def test_step_parameters_are_request_fields_and_job_variables() -> None:
    assert set(PARAMETER_ENV) <= set(StepRequest.model_fields)
    assert set(PARAMETER_ENV.values()) <= _worker_variables()
    required = {name for rules in REQUIRED_PARAMETERS.values() for alt in rules for name in alt}
    assert required <= set(PARAMETER_ENV)


def test_embedded_variables_are_read_by_the_sdk() -> None:
    assert {Env.QM_URL, Env.QM_WORKER_TOKEN, Env.QM_EXIT_FILE} <= _worker_variables()


def test_every_target_has_an_image_setting_and_a_reference_worker() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert {t: settings.image_for(t) for t in TARGETS}.keys() == set(TARGETS)
    for target in TARGETS:
        assert build_parser().parse_args([target]).target == target


@pytest.mark.parametrize(
    ("target", "given", "unmet"),
    [
        (Target.LOADER, set(), []),
        (Target.GRAPH_BUILDER, {"collection_inputs"}, [("collection_output",)]),
        (Target.GNN_TRAINER, {"graph_collection", "inference_interval"}, []),
        (Target.GNN_TRAINER, {"graph_collection"}, [("model_output", "inference_interval")]),
        (Target.VISUALIZER, set(), [("source",)]),
    ],
)
def test_missing_parameters(target: Target, given: set[str], unmet: list[tuple[str, ...]]) -> None:
    assert missing_parameters(target, given.__contains__) == unmet


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2024-06-01", "must be YYYY-MM-DD:YYYY-MM-DD"),
        ("2024-02-30:2024-03-01", "not a real date"),
        ("2024-03-01:2024-02-01", "start date is after end date"),
    ],
)
def test_time_range_rule(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_time_range(value)


def test_time_range_accepts_one_day() -> None:
    day = date(2024, 1, 1)
    assert parse_time_range("2024-01-01:2024-01-01") == (day, day)
