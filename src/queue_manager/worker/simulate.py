"""The reference worker misbehaving on purpose, one step at a time (docs/pipelines.md
"Simulating failures"): the step's `simulate` parameter, which the service hands the job as
QM_SIMULATE (JSON).

    {"fail_after": N, "http_status": 429, "retry_after": 7}   report `error` after N reports
    {"crash_after": N, "exit_code": 3}                          exit after N reports, no word
    {"hang_after": N}                                           alive, silent, no `pong`
    {"report_every": S}                                         slow but alive
    {"interrupt_after": N}                                      report `interrupted` after N
    {..., "only": {"symbol": "ETHUSDT", "time_range": "..."}}   only in that job

`simulate` may be a list of such cases: the first whose `only` matches the job (its SYMBOL and
TIME_RANGE) applies — a backfill's children share one template, this picks a chunk.

N counts progress (`loading`) reports. It misbehaves on the step's first attempt only, unless it
says `"attempts": K` (the first K). The attempt is the step's run plus one, read from its
TELEMETRY_PRODUCER_ID: a run after the first ends `-r<run>` (each retry, by the step's policy or
of the queue, is a new run); a restart of the same job (`max_retries`) is the same attempt.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from queue_manager.job_contract import Env

_RUN = re.compile(r"-r(\d+)$")
#: the status texts the failure message gives, as the exchange's answers read
_REASONS = {
    418: "I'm a teapot",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class SimulateError(ValueError):
    """QM_SIMULATE is not what docs/pipelines.md allows; the message says why."""


def attempt_of(producer_id: str) -> int:
    """The attempt a job runs, from its TELEMETRY_PRODUCER_ID: 1 for the step's first run."""
    found = _RUN.search(producer_id)
    return int(found.group(1)) + 1 if found else 1


@dataclass(frozen=True)
class Simulation:
    fail_after: int | None = None
    http_status: int | None = None
    retry_after: float | None = None
    crash_after: int | None = None
    exit_code: int = 1
    hang_after: int | None = None
    report_every: float | None = None
    interrupt_after: int | None = None
    attempts: int = 1
    #: the job it concerns (None: any): its SYMBOL and TIME_RANGE
    only_symbol: str | None = None
    only_time_range: str | None = None

    @classmethod
    def parse(cls, raw: str | None) -> Simulation | None:
        """The first case of QM_SIMULATE (an object, or a list of them)."""
        cases = cls.parse_all(raw)
        return cases[0] if cases else None

    @classmethod
    def parse_all(cls, raw: str | None) -> list[Simulation]:
        if raw is None or not raw.strip():
            return []
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SimulateError(f"{Env.QM_SIMULATE}: not JSON ({exc.msg})") from None
        cases = data if isinstance(data, list) else [data]
        return [cls._case(case) for case in cases]

    @classmethod
    def _case(cls, data: Any) -> Simulation:
        if not isinstance(data, dict):
            raise SimulateError(f"{Env.QM_SIMULATE}: must be a JSON object or a list of them")
        only = data.get("only") or {}
        if not isinstance(only, dict) or set(only) - {"symbol", "time_range"}:
            raise SimulateError(f"{Env.QM_SIMULATE}: only takes symbol and time_range")
        fields = set(cls.__dataclass_fields__) - {"only_symbol", "only_time_range"}
        unknown = sorted(set(data) - fields - {"only"})
        if unknown:
            raise SimulateError(f"{Env.QM_SIMULATE}: unknown {', '.join(unknown)}")
        return cls(
            fail_after=_count(data, "fail_after"),
            http_status=_int(data, "http_status", 100, 599),
            retry_after=_seconds(data, "retry_after", allow_zero=True),
            crash_after=_count(data, "crash_after"),
            exit_code=_int(data, "exit_code", 1, 255) or 1,
            hang_after=_count(data, "hang_after"),
            report_every=_seconds(data, "report_every", allow_zero=False),
            interrupt_after=_count(data, "interrupt_after"),
            attempts=_int(data, "attempts", 1, 100) or 1,
            only_symbol=only.get("symbol"),
            only_time_range=only.get("time_range"),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Simulation | None:
        """The step's simulation, when it misbehaves on this attempt; None otherwise."""
        symbol, time_range = environ.get(Env.SYMBOL), environ.get(Env.TIME_RANGE)
        for found in cls.parse_all(environ.get(Env.QM_SIMULATE)):
            if found.only_symbol not in (None, symbol):
                continue
            if found.only_time_range not in (None, time_range):
                continue
            attempt = attempt_of(environ.get(Env.TELEMETRY_PRODUCER_ID, ""))
            return found if attempt <= found.attempts else None
        return None

    def failure(self, reports: int) -> tuple[str, dict[str, Any]]:
        """The `error` report of `fail_after`: its message and its optional fields."""
        hints: dict[str, Any] = {}
        if self.http_status is None:
            return f"simulated failure after {reports} reports", hints
        hints["http_status"] = self.http_status
        reason = _REASONS.get(self.http_status, "")
        message = f"simulated HTTP {self.http_status} {reason}".rstrip()
        if self.retry_after is not None:
            hints["retry_after"] = self.retry_after
            message += f" (Retry-After: {self.retry_after:g})"
        return f"{message} after {reports} reports", hints


def _value(data: dict[str, Any], name: str) -> Any:
    value = data.get(name)
    if isinstance(value, bool):
        raise SimulateError(f"{Env.QM_SIMULATE}: {name} must be a number")
    return value


def _int(data: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = _value(data, name)
    if value is None:
        return None
    if not isinstance(value, int) or not low <= value <= high:
        raise SimulateError(f"{Env.QM_SIMULATE}: {name} must be an integer from {low} to {high}")
    return value


def _count(data: dict[str, Any], name: str) -> int | None:
    return _int(data, name, 0, 100_000)


def _seconds(data: dict[str, Any], name: str, *, allow_zero: bool) -> float | None:
    value = _value(data, name)
    if value is None:
        return None
    if (
        not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        raise SimulateError(f"{Env.QM_SIMULATE}: {name} must be a number of seconds")
    return float(value)
