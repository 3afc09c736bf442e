"""Pipeline planning (docs/pipelines.md): data-flow order, explicit depends_on, cycles, required
params."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter

from queue_manager.domain import planner, state
from queue_manager.domain.errors import InvalidRequest
from queue_manager.domain.models import QueueState, StepStatus
from queue_manager.domain.requests import StartRequest

QID = "0f9d6c1e-7c1b-4c9e-9a0e-2f4b8f1d2a3c"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def plan(body: dict[str, Any]) -> QueueState:
    return planner.plan(TypeAdapter(StartRequest).validate_python(body), QID)


def launched(queue: QueueState) -> list[int]:
    _, steps = state.claim_ready(queue, NOW)
    return [s.index for s in steps]


def set_status(queue: QueueState, index: int, status: StepStatus) -> None:
    queue.steps[index].status = status


def test_historical_example_dependencies_are_inferred(historical: dict[str, Any]) -> None:
    queue = plan(historical)
    assert [s.depends_on for s in queue.steps] == [[], [], [0], [1], [2, 3], [4]]
    assert queue.steps[2].collection_name == "btc_candles_5m_2024_06"
    assert queue.steps[3].collection_name == "btc_trades_2024_06"
    assert queue.steps[0].kafka_topic == f"{QID}.api_candles_5m"
    assert queue.type == "api_candles_5m"
    assert queue.kafka_topic == f"{QID}.api_candles_5m"
    assert queue.loader_type.value == "job"


def test_historical_example_runs_in_data_flow_order(historical: dict[str, Any]) -> None:
    queue = plan(historical)
    # loaders and connectors together
    assert sorted(launched(queue)) == [0, 1, 2, 3]
    for i in (0, 1, 2):
        set_status(queue, i, StepStatus.FINISHED)
    assert launched(queue) == []  # graph-builder waits for BOTH connectors
    set_status(queue, 3, StepStatus.FINISHED)
    assert launched(queue) == [4]
    set_status(queue, 4, StepStatus.LOADING)
    assert launched(queue) == []  # batch trainer waits for the builder to finish
    set_status(queue, 4, StepStatus.FINISHED)
    assert launched(queue) == [5]


def test_realtime_example_starts_everything_as_producers_run(realtime: dict[str, Any]) -> None:
    queue = plan(realtime)
    assert queue.loader_type.value == "stream"
    assert sorted(launched(queue)) == [0, 1, 2, 3]
    for i in (0, 1, 2, 3):
        set_status(queue, i, StepStatus.STARTED)
    assert launched(queue) == [4]
    set_status(queue, 4, StepStatus.LOADING)
    assert sorted(launched(queue)) == [5, 6]


def test_explicit_depends_on_overrides_inference(historical: dict[str, Any]) -> None:
    historical["requests"][1]["depends_on"] = [0]
    queue = plan(historical)
    assert queue.steps[1].depends_on == [0]
    assert launched(queue) == [0, 2]


def test_cycle_is_rejected() -> None:
    body = {
        "symbol": "BTCUSDT",
        "time_range": "2024-06-01:2024-06-30",
        "requests": [
            {"target": "loader-producer", "type": "api_trades", "depends_on": [1]},
            {"target": "arango-connector", "type": "api_trades", "depends_on": [0]},
        ],
    }
    with pytest.raises(InvalidRequest) as err:
        plan(body)
    assert err.value.errors[0]["field"] == "requests"
    assert "cycle" in err.value.errors[0]["message"]


def test_depends_on_must_name_another_step() -> None:
    body = {
        "symbol": "BTCUSDT",
        "time_range": "2024-06-01:2024-06-30",
        "requests": [{"target": "loader-producer", "type": "api_trades", "depends_on": [5]}],
    }
    with pytest.raises(InvalidRequest) as err:
        plan(body)
    assert err.value.errors[0]["field"] == "requests.0.depends_on"


@pytest.mark.parametrize(
    ("step", "missing"),
    [
        (
            {"target": "graph-builder", "type": "gnn_graph", "collection_output": "x"},
            "requests.0.collection_inputs",
        ),
        (
            {"target": "graph-builder", "type": "gnn_graph", "collection_inputs": ["a"]},
            "requests.0.collection_output",
        ),
        (
            {"target": "gnn-trainer", "type": "gnn_train", "model_output": "m"},
            "requests.0.graph_collection",
        ),
        (
            {"target": "gnn-trainer", "type": "gnn_train", "graph_collection": "g"},
            "requests.0.model_output",
        ),
        ({"target": "visualizer", "type": "graph_metrics_stream"}, "requests.0.source"),
    ],
)
def test_required_parameters(step: dict[str, Any], missing: str) -> None:
    body = {"symbol": "BTCUSDT", "time_range": "2024-06-01:2024-06-30", "requests": [step]}
    with pytest.raises(InvalidRequest) as err:
        plan(body)
    assert [e["field"] for e in err.value.errors] == [missing]


def test_single_form_is_one_loader_step(single: dict[str, Any]) -> None:
    queue = plan(single)
    assert [s.target.value for s in queue.steps] == ["loader-producer"]
    assert queue.start_time == datetime(2024, 1, 1, tzinfo=UTC)
    assert queue.end_time == datetime(2024, 1, 3, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("shorthand", "loader_type", "loader_kind"),
    [
        ("api", "api_candles_1m", "job"),
        ("rest", "api_candles_1m", "job"),
        ("ws", "ws_candles_1m", "stream"),
        ("api_candles_5m", "api_candles_5m", "job"),
    ],
)
def test_single_form_shorthand_stays_the_queue_type_and_the_loader_runs_a_full_type(
    single: dict[str, Any], shorthand: str, loader_type: str, loader_kind: str
) -> None:
    """The platform's loader fails on TYPE=api: it gets its own default, api_candles_1m."""
    queue = plan({**single, "type": shorthand})
    step = queue.steps[0]
    assert queue.type == shorthand
    assert step.type == loader_type
    assert queue.loader_type == loader_kind
    assert step.kafka_topic == f"{QID}.{loader_type}"
    assert step.collection_name == f"btc_{loader_type.removeprefix('api_')}_2024_01_01_2024_01_03"


def test_the_shorthand_mapping_is_configurable(single: dict[str, Any]) -> None:
    request = TypeAdapter(StartRequest).validate_python(single)
    queue = planner.plan(request, QID, {**planner.DEFAULT_LOADER_TYPES, "api": "api_candles_5m"})
    assert (queue.type, queue.steps[0].type) == ("api", "api_candles_5m")


def test_microservices_is_an_alias_of_requests(historical: dict[str, Any]) -> None:
    historical["microservices"] = historical.pop("requests")
    assert len(plan(historical).steps) == 6
