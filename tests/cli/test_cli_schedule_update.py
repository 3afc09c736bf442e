"""`queue-manager schedule update NAME …` against a real `queue-manager serve`: only what is
given changes (PATCH /schedules/NAME), the template's other keys kept; a bad value exits 1
naming the field and changes nothing; no change at all is refused before any request."""

from __future__ import annotations

import json

from tests.cli.helpers import Server, run_cli


def _show(server: Server, name: str) -> dict[str, object]:
    shown = run_cli("schedule", "show", name, api_url=server.url)
    assert shown.returncode == 0, shown.stderr
    return dict(json.loads(shown.stdout))


def test_update_changes_only_what_is_given(server: Server) -> None:
    created = run_cli(
        "schedule", "create", "edit-me", "--cron", "15 0 * * *", "--symbol", "BTCUSDT",
        "--type", "api_candles_5m", "--window", "1d",
        api_url=server.url,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    before = _show(server, "edit-me")

    done = run_cli(
        "schedule", "update", "edit-me", "--cron", "30 2 * * *", "--symbol", "ethusdt",
        "--symbol", "SOLUSDT", "--window", "1w", "--catchup", "latest",
        api_url=server.url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "schedule edit-me changed (catchup, cron, symbols, template); next run" in done.stderr
    after = _show(server, "edit-me")
    assert after["cron"] == "30 2 * * *"
    assert after["symbols"] == ["ETHUSDT", "SOLUSDT"]
    assert after["template"] == {"type": "api_candles_5m", "window": "1w"}  # type kept
    assert after["catchup"] == "latest"
    for kept in ("timezone", "concurrency_policy", "created_at", "created_by"):
        assert after[kept] == before[kept]
    assert str(after["next_run"]).endswith(":30:00Z") or str(after["next_run"]).endswith(
        ":30:00+00:00"
    )

    bad = run_cli("schedule", "update", "edit-me", "--cron", "nightly", api_url=server.url)
    assert bad.returncode == 1
    assert "cron" in bad.stderr and "5 fields" in bad.stderr
    assert _show(server, "edit-me")["cron"] == "30 2 * * *"

    nothing = run_cli("schedule", "update", "edit-me", api_url=server.url)
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr

    missing = run_cli("schedule", "update", "no-such", "--cron", "0 1 * * *", api_url=server.url)
    assert missing.returncode == 1 and "Schedule no-such not found" in missing.stderr
