"""The naming rules of docs/pipelines.md, docs/operations.md, with the documented examples."""

from __future__ import annotations

import re
from datetime import date

import pytest

from queue_manager.domain import naming
from queue_manager.domain.models import Target


@pytest.mark.parametrize(
    ("symbol", "step_type", "start", "end", "expected"),
    [
        ("BTCUSDT", "api_candles_5m", "2024-06-01", "2024-06-30", "btc_candles_5m_2024_06"),
        ("BTCUSDT", "api_trades", "2024-06-01", "2024-06-30", "btc_trades_2024_06"),
        ("BTCUSDT", "ws_candles_1m", "2024-08-01", "2024-08-01", "btc_ws_candles_1m_2024_08_01"),
        ("BTCUSDT", "ws_trades", "2024-08-01", "2024-08-01", "btc_ws_trades_2024_08_01"),
        ("ETHBTC", "api_trades", "2024-01-01", "2024-01-03", "eth_trades_2024_01_01_2024_01_03"),
        ("SOLFDUSD", "api_trades", "2024-02-01", "2024-02-29", "sol_trades_2024_02"),
        ("BNBEUR", "api_trades", "2023-02-01", "2023-02-28", "bnb_trades_2023_02"),
        ("XRPUSD", "api_trades", "2024-06-01", "2024-06-29", "xrp_trades_2024_06_01_2024_06_29"),
    ],
)
def test_default_collection_names(
    symbol: str, step_type: str, start: str, end: str, expected: str
) -> None:
    got = naming.default_collection(
        symbol, step_type, date.fromisoformat(start), date.fromisoformat(end)
    )
    assert got == expected


def test_symbol_that_is_only_a_quote_currency_is_its_own_base() -> None:
    assert naming.base_asset("USDT") == "USDT"
    assert naming.base_asset("BTCUSDT") == "BTC"
    assert naming.base_asset("FDUSDUSDT") == "FDUSD"


@pytest.mark.parametrize(
    ("step_type", "streaming"),
    [
        ("ws_candles_1m", True),
        ("realtime_graph", True),
        ("graph_metrics_stream", True),
        ("api_candles_5m", False),
        ("gnn_graph", False),
        ("streamed_data", False),
    ],
)
def test_streaming_types(step_type: str, streaming: bool) -> None:
    assert naming.is_streaming(step_type) is streaming


@pytest.mark.parametrize("target", list(Target))
def test_job_names_are_dns1123_and_short(target: Target) -> None:
    name = naming.job_name("0f9d6c1e-7c1b-4c9e-9a0e-2f4b8f1d2a3c", 63, target)
    assert len(name) <= 63
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert name.startswith("qm-0f9d6c1e-63-")
