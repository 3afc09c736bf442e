"""Reference worker: simulates any StreamForge target through the Worker SDK.

    python -m queue_manager.worker.reference <target> [--duration S] [--fail-after N]
                                             [--records-per-tick K] [--tick S]

Exit codes: 0 finished or interrupted, 1 error reported, 2 bad arguments or environment.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import structlog

from queue_manager.job_contract import (
    PARAMETER_ENV,
    TARGETS,
    Target,
    is_streaming,
)
from queue_manager.job_contract import (
    missing_parameters as missing_requirements,
)
from queue_manager.worker.env import WorkerEnv, WorkerEnvError
from queue_manager.worker.sdk import Outcome, Worker, make_transport
from queue_manager.worker.simulate import SimulateError, Simulation

DEFAULT_DURATION = 6.0
DEFAULT_TICK = 0.5
DEFAULT_RECORDS_PER_TICK = 100

# What each target says it did, for the telemetry `message`.
_WORK = {
    Target.LOADER: "published {n} records to {topic}",
    Target.CONNECTOR: "wrote {n} documents to {collection}",
    Target.GRAPH_BUILDER: "built {n} graph elements into {output}",
    Target.GNN_TRAINER: "processed {n} samples for {output}",
    Target.VISUALIZER: "published {n} metric points from {source}",
}

_T = TypeVar("_T")

log = structlog.get_logger("queue_manager.worker.reference")


@dataclass(frozen=True)
class Options:
    target: str
    duration: float
    tick: float
    fail_after: int | None
    records_per_tick: int


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a number > 0")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be an integer >= 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be an integer > 0")
    return value


def _argument(convert: Callable[[str], _T]) -> Callable[[str], _T]:
    def parse(text: str) -> _T:
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None

    parse.__name__ = convert.__name__.lstrip("_").replace("_", " ")
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m queue_manager.worker.reference",
        description=(
            "Simulate a StreamForge job: report started, then loading every tick with growing "
            "records_written and last_loaded_timestamp walking through TIME_RANGE, then finished "
            "(batch types, after --duration) -- or, for streaming types, until stopped. A stop "
            "command or SIGTERM/SIGINT reports interrupted and exits 0."
        ),
        epilog=(
            "Environment (set by queue-manager): QUEUE_ID, SYMBOL, TYPE, TIME_RANGE, "
            "TELEMETRY_PRODUCER_ID are required; QM_URL + QM_WORKER_TOKEN select HTTP reporting "
            "(embedded mode), else KAFKA_BOOTSTRAP_SERVERS (+ KAFKA_USER, KAFKA_PASSWORD, CA_PATH) "
            "selects Kafka; QM_EXIT_FILE receives the outcome. QM_WORKER_DURATION, QM_WORKER_TICK, "
            "QM_WORKER_FAIL_AFTER, QM_WORKER_RECORDS_PER_TICK give defaults to the options; "
            "QM_SIMULATE (the step's `simulate`, JSON: docs/pipelines.md) makes it fail, "
            "crash, hang or report slowly on purpose. "
            "Exit codes: 0 finished or interrupted, 1 error, 2 bad arguments or environment."
        ),
    )
    parser.add_argument("target", choices=TARGETS, help="the StreamForge service to simulate")
    parser.add_argument(
        "--duration",
        type=_argument(_positive_float),
        default=None,
        help=f"seconds until a batch type finishes (default {DEFAULT_DURATION:g}, "
        "or QM_WORKER_DURATION); streaming types walk TIME_RANGE at this pace but never finish",
    )
    parser.add_argument(
        "--fail-after",
        type=_argument(_non_negative_int),
        default=None,
        metavar="N",
        help="report error and exit 1 after N loading ticks (or QM_WORKER_FAIL_AFTER)",
    )
    parser.add_argument(
        "--records-per-tick",
        type=_argument(_positive_int),
        default=None,
        metavar="K",
        help=f"records_written grows by K each tick (default {DEFAULT_RECORDS_PER_TICK}, "
        "or QM_WORKER_RECORDS_PER_TICK)",
    )
    parser.add_argument(
        "--tick",
        type=_argument(_positive_float),
        default=None,
        help=f"seconds between loading reports (default {DEFAULT_TICK:g}, or QM_WORKER_TICK)",
    )
    return parser


def parse_options(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> Options:
    args = parser.parse_args(argv)

    def pick(given: _T | None, variable: str, convert: Callable[[str], _T], default: _T) -> _T:
        if given is not None:
            return given
        raw = os.environ.get(variable, "").strip()
        if not raw:
            return default
        try:
            return convert(raw)
        except ValueError as exc:
            parser.error(f"{variable}={raw!r}: {exc}")

    fail_after = args.fail_after
    if fail_after is None:
        fail_after = pick(None, "QM_WORKER_FAIL_AFTER", _non_negative_int, -1)
        fail_after = None if fail_after < 0 else fail_after
    return Options(
        target=args.target,
        duration=pick(args.duration, "QM_WORKER_DURATION", _positive_float, DEFAULT_DURATION),
        tick=pick(args.tick, "QM_WORKER_TICK", _positive_float, DEFAULT_TICK),
        fail_after=fail_after,
        records_per_tick=pick(
            args.records_per_tick,
            "QM_WORKER_RECORDS_PER_TICK",
            _positive_int,
            DEFAULT_RECORDS_PER_TICK,
        ),
    )


def missing_parameters(target: str, env: WorkerEnv) -> list[str]:
    """The docs/pipelines.md parameters `target` cannot work without, by variable name: the same
    requirements the service checks when it accepts the step."""
    unmet = missing_requirements(target, lambda name: getattr(env, name) not in (None, []))
    return [" or ".join(PARAMETER_ENV[name] for name in alternatives) for alternatives in unmet]


def _describe_work(options: Options, env: WorkerEnv, records: int) -> str:
    return _WORK[Target(options.target)].format(
        n=records,
        topic=env.kafka_topic or f"{env.queue_id}.{env.step_type}",
        collection=env.collection_name or "its collection",
        output=env.collection_output or env.model_output or env.inference_interval or "its output",
        source=env.source or "its source",
    )


async def _misbehave(worker: Worker, simulation: Simulation | None, reports: int) -> bool:
    """The step's `simulate` (docs/pipelines.md) after `reports` progress reports: True when it
    reported its failure (the worker ends in error); a crash never returns."""
    if simulation is None:
        return False
    if simulation.crash_after is not None and reports >= simulation.crash_after:
        log.warning("simulated crash", reports=reports, exit_code=simulation.exit_code)
        sys.stderr.flush()
        os._exit(simulation.exit_code)  # no report, no exit file: as a crash leaves it
    if simulation.fail_after is not None and reports >= simulation.fail_after:
        message, hints = simulation.failure(reports)
        log.error(message, reports=reports, **hints)
        await worker.error(message, **hints)
        return True
    if simulation.hang_after is not None and reports >= simulation.hang_after:
        _hang(reports)
    return False


def _hang(reports: int) -> NoReturn:
    """`hang_after`: alive and silent, as a worker stuck in a call that never returns. The event
    loop is blocked, so nothing is reported, no `ping` is answered and no `stop` is heard;
    SIGTERM is taken by the loop's handler, which never runs: only SIGKILL (the launcher's,
    LOCAL_KILL_TIMEOUT_SECONDS after its SIGTERM, or Kubernetes' after the pod's grace) ends it."""
    log.warning("simulated hang: silent, answering nothing", reports=reports)
    sys.stderr.flush()
    while True:
        time.sleep(3600)


async def simulate(
    worker: Worker, options: Options, simulation: Simulation | None = None
) -> Outcome:
    env = worker.env
    missing = missing_parameters(options.target, env)
    # Progress lines as a real loader writes them (docs/api.md "Step logs"): what to read.
    job_log = log.bind(queue_id=env.queue_id, target=options.target, symbol=env.symbol)
    if missing:
        job_log.error("missing parameters", missing=missing)
        await worker.error(f"{options.target} needs {', '.join(missing)}")
        return Outcome.ERROR
    streaming = is_streaming(env.step_type)
    total_ticks = max(1, math.ceil(options.duration / options.tick))
    start, end = env.range_start, env.range_end
    mode = "streaming" if streaming else "batch"
    await worker.started(f"{options.target} {env.step_type} {env.symbol} started ({mode})")
    job_log.info(
        "job started", type=env.step_type, mode=mode, start=start.isoformat(), end=end.isoformat()
    )
    if options.fail_after == 0:
        job_log.error("source refused the first request", attempt=1)
        await worker.error(f"simulated failure of {options.target} before any progress")
        return Outcome.ERROR
    if await _misbehave(worker, simulation, 0):
        return Outcome.ERROR
    # `report_every`: slow but alive, the same reports further apart (pings are answered).
    every = simulation.report_every if simulation and simulation.report_every else options.tick
    if every > options.tick:
        job_log.warning("source is slow", seconds_per_page=every)
    tick = 0
    while not await worker.wait_stop(every):
        tick += 1
        records = tick * options.records_per_tick
        loaded_up_to = start + (end - start) * min(1.0, tick / total_ticks)
        _progress(job_log, options, env, tick, records, loaded_up_to.isoformat())
        await worker.loading(records, loaded_up_to, _describe_work(options, env, records))
        if options.fail_after is not None and tick >= options.fail_after:
            job_log.error("page fetch failed", page=tick + 1, status=503, records_written=records)
            await worker.error(f"simulated failure of {options.target} after {tick} ticks")
            return Outcome.ERROR
        if await _misbehave(worker, simulation, tick):
            return Outcome.ERROR
        stop_at = simulation.interrupt_after if simulation else None
        if stop_at is not None and tick >= stop_at:
            job_log.info("simulated stop: interrupted", pages=tick, records_written=records)
            await worker.interrupted()
            return Outcome.INTERRUPTED
        if not streaming and tick >= total_ticks:
            job_log.info("job finished", pages=tick, records_written=records)
            await worker.finished(records, loaded_up_to, _describe_work(options, env, records))
            return Outcome.FINISHED
    job_log.info(
        "stop requested: interrupted", pages=tick, records_written=tick * options.records_per_tick
    )
    await worker.interrupted()
    return Outcome.INTERRUPTED


def _progress(
    job_log: structlog.typing.FilteringBoundLogger,
    options: Options,
    env: WorkerEnv,
    tick: int,
    records: int,
    up_to: str,
) -> None:
    """A tick's lines: the loader fetches a page and publishes it; the others write a batch."""
    if options.target == Target.LOADER:
        job_log.info("page fetched", page=tick, records=options.records_per_tick, up_to=up_to)
        topic = env.kafka_topic or f"{env.queue_id}.{env.step_type}"
        job_log.info("records published", topic=topic, total=records)
    else:
        job_log.info("batch written", batch=tick, records=options.records_per_tick, total=records)


async def run(options: Options, env: WorkerEnv, simulation: Simulation | None = None) -> int:
    async with Worker(env, make_transport(env)) as worker:
        await simulate(worker, options, simulation)
    outcome = worker.outcome or Outcome.ERROR
    return outcome.exit_code


def configure_logging() -> None:
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    options = parse_options(parser, argv)
    configure_logging()
    try:
        env = WorkerEnv.load()
        simulation = Simulation.from_env(os.environ)
    except (WorkerEnvError, SimulateError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    if simulation is not None:
        log.info("simulating", **{k: v for k, v in vars(simulation).items() if v is not None})
    return asyncio.run(run(options, env, simulation))


if __name__ == "__main__":
    sys.exit(main())
