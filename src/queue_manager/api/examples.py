"""The documented examples, shown in the OpenAPI documentation."""

from __future__ import annotations

from typing import Any

SINGLE: dict[str, Any] = {"symbol": "BTCUSDT", "type": "api", "time_range": "2024-01-01:2024-01-03"}

HISTORICAL: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "time_range": "2024-06-01:2024-06-30",
    "requests": [
        {"target": "loader-producer", "type": "api_candles_5m", "interval": "5m"},
        {"target": "loader-producer", "type": "api_trades"},
        {"target": "arango-connector", "type": "api_candles_5m"},
        {"target": "arango-connector", "type": "api_trades"},
        {
            "target": "graph-builder",
            "type": "gnn_graph",
            "collection_inputs": ["btc_candles_5m_2024_06", "btc_trades_2024_06"],
            "collection_output": "btc_graph_2024_06",
        },
        {
            "target": "gnn-trainer",
            "type": "gnn_train",
            "graph_collection": "btc_graph_2024_06",
            "model_output": "gnn_model_btc_2024_06",
        },
    ],
}

REALTIME: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "time_range": "2024-08-01:2024-08-01",
    "requests": [
        {"target": "loader-producer", "type": "ws_candles_1m"},
        {"target": "loader-producer", "type": "ws_trades"},
        {"target": "arango-connector", "type": "ws_candles_1m"},
        {"target": "arango-connector", "type": "ws_trades"},
        {
            "target": "graph-builder",
            "type": "realtime_graph",
            "collection_inputs": ["btc_ws_candles_1m_2024_08_01", "btc_ws_trades_2024_08_01"],
            "collection_output": "btc_graph_rt_2024_08_01",
        },
        {
            "target": "gnn-trainer",
            "type": "realtime_gnn_infer",
            "graph_collection": "btc_graph_rt_2024_08_01",
            "inference_interval": "5m",
        },
        {
            "target": "visualizer",
            "type": "graph_metrics_stream",
            "source": "btc_graph_rt_2024_08_01",
        },
    ],
}

#: a step that heals itself (docs/pipelines.md "Retry")
RETRY: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "time_range": "2024-01-01:2024-01-03",
    "requests": [
        {
            "target": "loader-producer",
            "type": "api_candles_5m",
            "interval": "5m",
            "retry": {
                "limit": 3,
                "backoff": {"initial": 2, "factor": 2, "max": 300, "jitter": 0.1},
                "on": ["rate_limited", "transient", "infrastructure", "timeout", "stalled"],
            },
            "timeout": 3600,
        },
        {"target": "arango-connector", "type": "api_candles_5m"},
    ],
}

#: the reference worker answered 429 on its first attempt: the step retries after 7 s
SIMULATED_429: dict[str, Any] = {
    **SINGLE,
    "retry": {"limit": 2},
    "simulate": {"fail_after": 2, "http_status": 429, "retry_after": 7},
}

START_EXAMPLES: dict[str, Any] = {
    "single": {"summary": "One loader-producer step", "value": SINGLE},
    "historical": {"summary": "Historical pipeline (batch)", "value": HISTORICAL},
    "realtime": {"summary": "Real-time pipeline (streaming)", "value": REALTIME},
    "retry": {"summary": "A loader that retries rate limits and 5xx", "value": RETRY},
    "simulated-429": {
        "summary": "The reference worker gets a 429 once, and the step retries after 7 s",
        "value": SIMULATED_429,
    },
}


SCHEDULE_EXAMPLES: dict[str, Any] = {
    "nightly": {
        "summary": "Yesterday's candles for two symbols, every night at 00:15 UTC",
        "value": {
            "name": "nightly-candles",
            "cron": "15 0 * * *",
            "timezone": "UTC",
            "symbols": ["BTCUSDT", "ETHUSDT"],
            "template": {"type": "api_candles_5m", "window": "1d"},
            "concurrency_policy": "Forbid",
            "catchup": "latest",
        },
    },
    "monthly": {
        "summary": "The previous calendar month's pipeline, on the 1st at 02:00 London time",
        "value": {
            "name": "monthly-graph",
            "cron": "0 2 1 * *",
            "timezone": "Europe/London",
            "symbols": ["BTCUSDT"],
            "template": {
                "window": "1M",
                "requests": [
                    {"target": "loader-producer", "type": "api_candles_5m", "interval": "5m"},
                    {"target": "arango-connector", "type": "api_candles_5m"},
                ],
            },
        },
    },
}

SCHEDULE_PATCH_EXAMPLES: dict[str, Any] = {
    "later": {"summary": "Run at 01:00 instead", "value": {"cron": "0 1 * * *"}},
}

BACKFILL: dict[str, Any] = {
    "symbols": ["BTCUSDT"],
    "type": "api_candles_5m",
    "time_range": "2023-01-01:2023-12-31",
    "chunk": "month",
    "max_parallel": 4,
}

BACKFILL_PIPELINE: dict[str, Any] = {
    "symbols": ["BTCUSDT", "ETHUSDT"],
    "time_range": "2024-01-01:2024-03-31",
    "chunk": "month",
    "max_parallel": 2,
    "requests": [
        {"target": "loader-producer", "type": "api_candles_5m", "interval": "5m"},
        {"target": "arango-connector", "type": "api_candles_5m"},
    ],
}

BACKFILL_EXAMPLES: dict[str, Any] = {
    "year": {"summary": "2023 for BTCUSDT, a month at a time, four at once", "value": BACKFILL},
    "pipeline": {
        "summary": "A quarter of loader and connector for two symbols, by month, two at once",
        "value": BACKFILL_PIPELINE,
    },
}

# -- GET /queues: the list's filters ----------------------------------------------------------
TOP_LEVEL_EXAMPLES: dict[str, Any] = {
    "folded": {"summary": "No backfill's children, as the dashboard lists", "value": True},
}
CREATED_FROM_EXAMPLES: dict[str, Any] = {
    "day": {"summary": "From the start of a day (UTC)", "value": "2024-06-01"},
    "instant": {"summary": "From an instant with its zone", "value": "2024-06-01T08:00:00+02:00"},
}
CREATED_TO_EXAMPLES: dict[str, Any] = {
    "day": {
        "summary": "Before the next day: all of 2024-06-01 with the example above",
        "value": "2024-06-02",
    },
}

# -- GET /queues/{id}/steps/{index}/logs: what to read ------------------------------------
LOG_LEVEL_EXAMPLES: dict[str, Any] = {
    "warnings": {"summary": "Warnings and errors only", "value": "warning"},
}
LOG_GREP_EXAMPLES: dict[str, Any] = {
    "pages": {"summary": "The lines that mention fetched pages", "value": "page"},
}

# -- the coverage ledger (docs/coverage.md) --------------------------------------------------
COVERAGE_SYMBOL_EXAMPLES: dict[str, Any] = {
    "two": {"summary": "Repeat `symbol` for each symbol", "value": ["BTCUSDT", "ETHUSDT"]},
}
COVERAGE_TYPE_EXAMPLES: dict[str, Any] = {
    "candles": {"summary": "5-minute candles", "value": ["api_candles_5m"]},
}
COVERAGE_FROM_EXAMPLES: dict[str, Any] = {
    "year": {"summary": "The first day of 2024", "value": "2024-01-01"},
}
COVERAGE_TO_EXAMPLES: dict[str, Any] = {
    "half": {"summary": "The last day of June 2024", "value": "2024-06-30"},
}
FILL_EXAMPLES: dict[str, Any] = {
    "dry-run": {
        "summary": "The plan only: which chunks of two symbols would run",
        "value": {
            "symbols": ["BTCUSDT", "ETHUSDT"],
            "types": ["api_candles_5m"],
            "time_range": "2024-01-01:2024-06-30",
            "chunk": "month",
            "dry_run": True,
        },
    },
    "fill": {
        "summary": "Fill them: a loader and its connector per chunk, two at once",
        "value": {
            "symbols": ["BTCUSDT", "ETHUSDT"],
            "types": ["api_candles_5m"],
            "time_range": "2024-01-01:2024-06-30",
            "chunk": "month",
            "max_parallel": 2,
            "template": {
                "requests": [
                    {"target": "loader-producer", "type": "api_candles_5m", "interval": "5m"},
                    {"target": "arango-connector", "type": "api_candles_5m"},
                ]
            },
        },
    },
}
EXPECTED_GAP_EXAMPLES: dict[str, Any] = {
    "one-symbol": {
        "summary": "A maintenance day of one symbol",
        "value": {
            "symbol": "BTCUSDT",
            "from": "2024-03-10",
            "to": "2024-03-10",
            "reason": "exchange maintenance",
        },
    },
    "all": {
        "summary": "An outage of every symbol",
        "value": {"symbol": "*", "from": "2024-05-01", "to": "2024-05-02", "reason": "outage"},
    },
}
