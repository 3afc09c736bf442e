"""The Worker a StreamForge job uses to report progress and learn it must stop
(docs/worker-protocol.md).

Longer than our modules usually are, on purpose: it is the one class a job uses, and its
reporting, delivery retries, command listener and signal handling share the worker's state
(outcome, stop request, newest pending progress, one send lock) that split modules would have
to hand back and forth. What it sends is built in `messages`.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from queue_manager.job_contract import CommandField, CommandName, Reported, Telemetry
from queue_manager.worker import messages
from queue_manager.worker.env import WorkerEnv
from queue_manager.worker.transport import Command, DeliveryError, HttpTransport, Transport

log = structlog.get_logger("queue_manager.worker")

DELIVERY_DEADLINE = 120.0
MAX_BACKOFF = 2.0
READY_TIMEOUT = 10.0


class Outcome(StrEnum):
    FINISHED = Reported.FINISHED.value
    ERROR = Reported.ERROR.value
    INTERRUPTED = Reported.INTERRUPTED.value

    @property
    def exit_code(self) -> int:
        return 1 if self is Outcome.ERROR else 0


def make_transport(env: WorkerEnv) -> Transport:
    """QM_URL set: HTTP to the service (embedded mode); otherwise Kafka."""
    if env.qm_url is not None:
        assert env.qm_worker_token is not None  # WorkerEnv guarantees it
        return HttpTransport(
            env.qm_url,
            env.qm_worker_token.get_secret_value(),
            queue_id=env.queue_id,
            producer=env.telemetry_producer_id,
        )
    # Imported here so an embedded worker never pays for (or needs) the Kafka client.
    from queue_manager.worker.kafka import KafkaTransport

    return KafkaTransport(env)


class Worker:
    """Reports a job's life to queue-manager and tells it when to stop.

    Status transitions (started, finished, error, interrupted) are retried until delivered or
    `delivery_deadline` passes; `loading` returns at once and only the newest pending update
    is sent. Leaving the `async with` block reports what the block did not: `error` if it
    raised, `interrupted` if a stop was requested, `finished` otherwise.
    """

    def __init__(
        self,
        env: WorkerEnv,
        transport: Transport,
        *,
        handle_signals: bool = True,
        delivery_deadline: float = DELIVERY_DEADLINE,
        max_backoff: float = MAX_BACKOFF,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.env = env
        self.transport = transport
        self.stop_requested = asyncio.Event()
        self.stop_reason: str | None = None
        self.outcome: Outcome | None = None
        self.records_written = 0
        self.last_loaded_timestamp: datetime | None = None
        self._handle_signals = handle_signals
        self._deadline = delivery_deadline
        self._max_backoff = max_backoff
        self._ready_timeout = ready_timeout
        self._error_message: str | None = None
        self._abandon_delivery = False
        self._send_lock = asyncio.Lock()
        self._pending_progress: dict[str, Any] | None = None
        self._progress_wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._signals: list[signal.Signals] = []
        self._log = log.bind(queue_id=env.queue_id, producer=env.telemetry_producer_id)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> Worker:
        """Read the job environment (raises WorkerEnvError) and pick the transport."""
        env = WorkerEnv.load(environ)
        return cls(env, make_transport(env), **options)

    async def __aenter__(self) -> Self:
        self._spawn(self._progress_loop(), "progress")
        self._spawn(self._command_loop(), "commands")
        if self._handle_signals:
            self._install_signal_handlers()
        self._log.info("worker attached", transport=self.transport.name, type=self.env.step_type)
        # Once the job says `started`, a stop published from then on must be heard.
        try:
            await asyncio.wait_for(self.transport.ready.wait(), self._ready_timeout)
        except TimeoutError:
            self._log.warning("command channel not ready yet; carrying on")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.outcome is None:
                await self._report_exit(exc)
        finally:
            await self._shutdown()
            self._write_exit_file()

    async def _report_exit(self, exc: BaseException | None) -> None:
        clean = exc is None or (isinstance(exc, SystemExit) and exc.code in (None, 0))
        if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
            await self.interrupted()
        elif self.stop_requested.is_set():
            await self.interrupted(None if clean else f"stopped ({type(exc).__name__}: {exc})")
        elif clean:
            await self.finished()
        else:
            await self.error(f"{type(exc).__name__}: {exc}")

    # -- reporting -------------------------------------------------------------------------

    async def started(self, message: str | None = None) -> bool:
        if self._ended(Reported.STARTED):
            return False
        body = self._body(Reported.STARTED, message=message)
        # A stop makes `started` moot: the terminal status supersedes it.
        return await self._deliver(body, give_up_on_stop=True)

    async def loading(
        self,
        records_written: int | None = None,
        last_loaded_timestamp: datetime | None = None,
        message: str | None = None,
    ) -> None:
        """Queue a progress update and return at once; only the newest pending one is sent."""
        if self._ended(Reported.LOADING):
            return
        self._advance(records_written, last_loaded_timestamp)
        self._pending_progress = self._body(Reported.LOADING, message=message)
        self._progress_wakeup.set()

    async def finished(
        self,
        records_written: int | None = None,
        last_loaded_timestamp: datetime | None = None,
        message: str | None = None,
    ) -> bool:
        return await self._terminal(
            Outcome.FINISHED, records_written, last_loaded_timestamp, message=message
        )

    async def error(
        self,
        message: str,
        records_written: int | None = None,
        last_loaded_timestamp: datetime | None = None,
        *,
        error_class: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> bool:
        """Report the end in error. The optional hints tell the service how to retry
        (docs/worker-protocol.md): `error_class` (one of docs/operations.md "Error classes"),
        the `http_status` the exchange answered, its `retry_after` in seconds."""
        return await self._terminal(
            Outcome.ERROR,
            records_written,
            last_loaded_timestamp,
            error_message=message,
            hints={
                "error_class": error_class,
                "http_status": http_status,
                "retry_after": retry_after,
            },
        )

    async def interrupted(self, message: str | None = None) -> bool:
        """Report `interrupted` (the service records the step as stopped)."""
        if message is None and self.stop_reason is not None:
            message = f"stopped by {self.stop_reason}"
        return await self._terminal(Outcome.INTERRUPTED, None, None, message=message)

    def request_stop(self, reason: str) -> None:
        if not self.stop_requested.is_set():
            self.stop_reason = reason
            self._log.info("stop requested", reason=reason)
            self.stop_requested.set()
        elif reason.startswith("SIG") and not self._abandon_delivery:
            # Asked twice by a person or a supervisor: don't sit out the delivery deadline.
            self._log.warning("second stop signal: giving up undelivered telemetry", reason=reason)
            self._abandon_delivery = True

    async def wait_stop(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True as soon as a stop is requested."""
        try:
            await asyncio.wait_for(self.stop_requested.wait(), seconds)
        except TimeoutError:
            return False
        return True

    # -- internals -------------------------------------------------------------------------

    def _ended(self, event: str) -> bool:
        if self.outcome is not None:
            self._log.warning(
                "report after the end ignored", event_name=event, outcome=self.outcome.value
            )
            return True
        return False

    def _advance(self, records_written: int | None, last_loaded: datetime | None) -> None:
        # The service only lets both grow, so a smaller value is kept at the larger one here too.
        if records_written is not None:
            if records_written < 0:
                raise ValueError("records_written must be >= 0")
            self.records_written = max(self.records_written, records_written)
        if last_loaded is not None:
            if last_loaded.tzinfo is None:
                last_loaded = last_loaded.replace(tzinfo=UTC)
            if self.last_loaded_timestamp is None or last_loaded > self.last_loaded_timestamp:
                self.last_loaded_timestamp = last_loaded

    async def _terminal(
        self,
        outcome: Outcome,
        records_written: int | None,
        last_loaded: datetime | None,
        *,
        message: str | None = None,
        error_message: str | None = None,
        hints: dict[str, Any] | None = None,
    ) -> bool:
        if self._ended(outcome.value):
            return False
        self._advance(records_written, last_loaded)
        self.outcome = outcome
        self._error_message = error_message
        self._pending_progress = None
        body = self._body(outcome.value, message=message, error_message=error_message)
        body.update(messages.error_hints(**(hints or {})))
        return await self._deliver(body, give_up_on_stop=False)

    def _body(
        self, event: str, *, message: str | None = None, error_message: str | None = None
    ) -> dict[str, Any]:
        return messages.telemetry(
            self.env,
            event,
            records_written=self.records_written,
            last_loaded=self.last_loaded_timestamp,
            message=message,
            error_message=error_message,
        )

    async def _deliver(self, body: dict[str, Any], *, give_up_on_stop: bool) -> bool:
        event = body[Telemetry.EVENT]

        def should_stop(state: RetryCallState) -> bool:
            if self._abandon_delivery or (give_up_on_stop and self.stop_requested.is_set()):
                return True
            return bool(stop_after_delay(self._deadline)(state))

        def before_sleep(state: RetryCallState) -> None:
            if state.attempt_number == 1 or state.attempt_number % 10 == 0:
                failure = state.outcome.exception() if state.outcome is not None else None
                self._log.warning(
                    "telemetry not delivered, retrying",
                    event_name=event,
                    attempt=state.attempt_number,
                    error=str(failure),
                )

        retrying = AsyncRetrying(
            stop=should_stop,
            wait=wait_exponential(multiplier=0.1, min=0.1, max=self._max_backoff),
            retry=retry_if_exception(lambda exc: isinstance(exc, DeliveryError) and exc.retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async with self._send_lock:
                async for attempt in retrying:
                    with attempt:
                        await self.transport.send(body)
        except DeliveryError as exc:
            self._log.error(
                "telemetry not delivered", event_name=event, error=str(exc), retryable=exc.retryable
            )
            return False
        self._log.info("reported", event_name=event, records_written=body["records_written"])
        return True

    async def _progress_loop(self) -> None:
        backoff = 0.1
        failing = False
        while True:
            await self._progress_wakeup.wait()
            self._progress_wakeup.clear()
            async with self._send_lock:
                # Taken only now: whatever arrived while waiting for the lock supersedes.
                body, self._pending_progress = self._pending_progress, None
                if body is None or self.outcome is not None:
                    continue
                try:
                    await self.transport.send(body)
                except DeliveryError as exc:
                    failure: DeliveryError | None = exc
                else:
                    failure = None
            if failure is None:
                if failing:
                    self._log.info("progress updates delivered again")
                backoff, failing = 0.1, False
                continue
            if not failure.retryable:
                self._log.error("progress update refused", error=str(failure))
                continue
            if not failing:
                # Once per outage: the updates are coalesced, so is their complaint.
                self._log.warning("progress update not delivered, retrying", error=str(failure))
                failing = True
            if self._pending_progress is None:
                self._pending_progress = body
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)
            self._progress_wakeup.set()

    async def _command_loop(self) -> None:
        try:
            await self.transport.run_commands(self._on_command)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._log.exception("command listener died; stop commands will not be heard")

    def _on_command(self, command: Command) -> None:
        if command.get(CommandField.QUEUE_ID, self.env.queue_id) != self.env.queue_id:
            return
        name = command.get(CommandField.COMMAND)
        if name == CommandName.STOP:
            self.request_stop("stop command")
        elif name == CommandName.PING:
            self._spawn(self._pong(), "pong")

    async def _pong(self) -> None:
        try:
            await self.transport.send(self._body(Reported.PONG))
        except DeliveryError as exc:
            self._log.info("pong not delivered", error=str(exc))

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=f"qm-worker-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.request_stop, sig.name)
            except (NotImplementedError, RuntimeError, ValueError):
                # Not the main thread, or a platform without loop signal support.
                continue
            self._signals.append(sig)

    async def _shutdown(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self.transport.close()
        except Exception as exc:
            self._log.warning("transport close failed", error=str(exc))

    def _write_exit_file(self) -> None:
        path = self.env.qm_exit_file
        if path is None or self.outcome is None:
            return
        try:
            messages.write_exit_file(
                path,
                self.env,
                outcome=self.outcome.value,
                records_written=self.records_written,
                error_message=self._error_message,
            )
        except OSError as exc:
            self._log.error("exit file not written", path=str(path), error=str(exc))
