"""The naming rules of docs/pipelines.md, docs/operations.md, with the documented examples."""

from __future__ import annotations

import re
import uuid
from datetime import date

import annotated_types
import pytest

from queue_manager.domain import naming
from queue_manager.domain.models import Target
from queue_manager.domain.requests import PipelineCreate


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


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("0001-01-01", "0001-01-01", "btc_candles_5m_0001_01_01"),
        ("0001-01-01", "0001-01-31", "btc_candles_5m_0001_01"),
        ("0099-12-30", "0100-01-02", "btc_candles_5m_0099_12_30_0100_01_02"),
        ("0999-02-01", "0999-02-28", "btc_candles_5m_0999_02"),
    ],
)
def test_years_before_1000_are_zero_padded(start: str, end: str, expected: str) -> None:
    got = naming.default_collection(
        "BTCUSDT", "api_candles_5m", date.fromisoformat(start), date.fromisoformat(end)
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


def _max_step_index() -> int:
    """The last index a pipeline can have: its step list's documented maximum length, minus 1."""
    (limit,) = [m.max_length for m in PipelineCreate.model_fields["requests"].metadata
                if isinstance(m, annotated_types.MaxLen)]  # fmt: skip
    return int(limit) - 1


@pytest.mark.parametrize("target", list(Target))
def test_job_names_are_dns1123_and_carry_the_whole_queue_id(target: Target) -> None:
    name = naming.job_name("0f9d6c1e-7c1b-4c9e-9a0e-2f4b8f1d2a3c", 7, target)
    assert name == f"qm-0f9d6c1e7c1b4c9e9a0e2f4b8f1d2a3c-7-{target.value}"
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)


def test_the_longest_job_name_fits_a_kubernetes_name() -> None:
    longest = max(Target, key=lambda t: len(t.value))
    name = naming.job_name(str(uuid.uuid4()), _max_step_index(), longest)
    assert len(name) <= naming.JOB_NAME_MAX == 63
    assert name.endswith(f"-{_max_step_index()}-{longest.value}")


def test_queue_ids_sharing_their_first_8_characters_get_distinct_job_names() -> None:
    first, second = (
        "0f9d6c1e-7c1b-4c9e-9a0e-2f4b8f1d2a3c",
        "0f9d6c1e-0000-4000-8000-000000000000",
    )
    a, b = (naming.job_name(q, 0, Target.LOADER) for q in (first, second))
    assert a != b
    # The prefix people recognise is the same for both.
    assert a.startswith("qm-0f9d6c1e") and b.startswith("qm-0f9d6c1e")
