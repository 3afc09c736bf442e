"""`queue-manager start --dry-run` and `queue-manager collection NAME` against the real service
(docs/api.md "POST /queues/plan", "GET /collections/{name}")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.cli.helpers import Server, run_cli
from tests.support.waiting import wait_until

JUNE = {"symbol": "BTCUSDT", "time_range": "2024-06-01:2024-06-30"}
LOADER = {"target": "loader-producer", "type": "api_candles_5m"}
CONNECTOR = {"target": "arango-connector", "type": "api_candles_5m"}


def graph(name: str, **more: Any) -> dict[str, Any]:
    return {
        "target": "graph-builder",
        "type": "gnn_graph",
        "collection_inputs": [name],
        "collection_output": "btc_graph_2024_06",
        **more,
    }


def body_file(tmp_path: Path, body: dict[str, Any]) -> str:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    return str(path)


def queue_count(server: Server) -> int:
    return len(httpx.get(f"{server.url}/queues", timeout=5).json()["data"])


def test_dry_run_prints_the_plan_and_starts_nothing(server: Server, tmp_path: Path) -> None:
    before = queue_count(server)
    body = {**JUNE, "requests": [LOADER, CONNECTOR, graph("btc_candles_5m_2024_06")]}
    done = run_cli("start", "--dry-run", "--file", body_file(tmp_path, body), api_url=server.url)
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    for text in (
        "STEP",
        "AFTER (WHY)",
        "starts with step 0 (topic",
        "once finished: step 1 (reads btc_candles_5m_2024_06)",
        "writes btc_graph_2024_06",
        "Plan valid: nothing was started",
    ):
        assert text in out, (text, done.stdout)
    assert queue_count(server) == before


def test_dry_run_names_every_error_and_exits_1(server: Server, tmp_path: Path) -> None:
    before = queue_count(server)
    body = {
        **JUNE,
        "requests": [
            LOADER,
            CONNECTOR,
            graph("btc_candles_5m_2024_6"),
            {"target": "visualizer", "type": "graph_metrics_stream"},
        ],
    }
    done = run_cli("start", "--dry-run", "--file", body_file(tmp_path, body), api_url=server.url)
    assert done.returncode == 1, done.stdout
    assert "the request has 2 error(s); nothing was started" in done.stderr
    assert "requests.2.collection_inputs" in done.stderr
    assert "did you mean btc_candles_5m_2024_06?" in done.stderr
    assert "requests.3.source: visualizer requires source" in done.stderr
    assert "graph-builder" in done.stdout  # the plan is still drawn
    assert queue_count(server) == before


def test_collection_shows_its_producer_and_readers(server: Server, tmp_path: Path) -> None:
    name = "btc_candles_5m_2024_06"
    body = {**JUNE, "requests": [graph(name, external_inputs=[name])]}
    started = run_cli("start", "--file", body_file(tmp_path, body), api_url=server.url)
    assert started.returncode == 0, started.stderr
    queue_id = started.stdout.strip()

    def finished() -> bool:
        answer = httpx.get(f"{server.url}/queues/{queue_id}", timeout=5).json()["data"]
        assert answer["status"] not in ("error", "stopped"), answer
        return bool(answer["status"] == "finished")

    wait_until(finished, 30, what="the graph queue to finish")
    done = run_cli("collection", "btc_graph_2024_06", api_url=server.url)
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert f"queue {queue_id} step 0" in out
    assert "graph-builder gnn_graph" in out
    assert f"inputs {name}" in out
    assert "No step has read it yet." in out

    missing = run_cli("collection", "btc_grph", api_url=server.url)
    assert missing.returncode != 0
    assert "btc_grph not in the catalog" in missing.stderr
