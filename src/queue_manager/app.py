"""Composition root: `create_app` picks the adapters and wires everything; the lifespan opens and
closes them and supervises the background loops. Nothing happens at import time."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import secrets
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from fastapi import FastAPI

from queue_manager import __version__
from queue_manager.adapters.system_clock import SystemClock
from queue_manager.api import (
    auth_routes,
    collections,
    coverage,
    errors,
    health,
    history,
    internal,
    live,
    logs,
    plans,
    queues,
    ui,
)
from queue_manager.api import rate_limits as rate_limits_api
from queue_manager.api import schedules as schedules_api
from queue_manager.api import stats as stats_api
from queue_manager.api.container import AuthPolicy, Container
from queue_manager.api.hub import Hub
from queue_manager.api.middleware import BodyLimit, HTTPMetrics
from queue_manager.api.secret_file import file_secret
from queue_manager.api.sessions import Sessions
from queue_manager.api.worker_auth import WorkerTokens
from queue_manager.domain.errors import DependencyUnavailable, Misconfigured
from queue_manager.domain.identity import ApiToken, Role, read_tokens_file
from queue_manager.job_contract import ARANGO_SECRET_KEYS, KAFKA_SECRET_KEYS, TARGETS, Env
from queue_manager.observability import logging as qm_logging
from queue_manager.observability.metrics import Metrics
from queue_manager.ports import BearerVerifier, Bus, Clock, DataTopics, Launcher, Store
from queue_manager.services.backfills import BackfillService
from queue_manager.services.catalog import CatalogService
from queue_manager.services.coverage import CoverageService, read_gaps_file
from queue_manager.services.engine import Engine, Limits
from queue_manager.services.health import Health
from queue_manager.services.identity import IdentityService
from queue_manager.services.job_events import JobEvents
from queue_manager.services.job_specs import JobConfig
from queue_manager.services.live import UpdateRelay
from queue_manager.services.logs import StepLogs
from queue_manager.services.overview import OverviewService
from queue_manager.services.plans import PlanService
from queue_manager.services.queues import QueueService
from queue_manager.services.rate_limit_release import RateLimitRelease
from queue_manager.services.rate_limits import RateLimits
from queue_manager.services.reconciler import Reconciler
from queue_manager.services.retention import Pruner
from queue_manager.services.schedules import ScheduleService
from queue_manager.services.step_watch import StepWatch
from queue_manager.services.stop_deadlines import StopDeadlines
from queue_manager.services.telemetry import Dispatcher
from queue_manager.services.workers import WorkerReports
from queue_manager.settings import AuthMode, BusBackend, LauncherBackend, Settings, StoreBackend
from queue_manager.supervisor import Supervisor

log = structlog.get_logger(__name__)


@dataclass
class Adapters:
    store: Store
    bus: Bus
    launcher: Launcher
    #: verifies OIDC bearer tokens when OIDC_ISSUER is set
    oidc: BearerVerifier | None = None
    #: the workers' data topics; None on the in-process bus, which has none
    topics: DataTopics | None = None


def build_adapters(settings: Settings, tokens: WorkerTokens) -> Adapters:
    store: Store
    bus: Bus
    launcher: Launcher
    topics: DataTopics | None = None
    if settings.resolved_store is StoreBackend.ARANGO:
        from queue_manager.adapters.arango_store import ArangoStore

        store = ArangoStore.from_settings(settings)
    else:
        from queue_manager.adapters.sqlite_store import SQLiteStore

        store = SQLiteStore(settings.sqlite_file)
    if settings.resolved_bus is BusBackend.KAFKA:
        from queue_manager.adapters.kafka_bus import KafkaBus
        from queue_manager.adapters.kafka_topics import KafkaDataTopics

        bus = KafkaBus.from_settings(settings)
        topics = KafkaDataTopics.from_settings(settings)
    else:
        from queue_manager.adapters.memory_bus import MemoryBus

        bus = MemoryBus()
    if settings.resolved_launcher is LauncherBackend.KUBERNETES:
        from queue_manager.adapters.kube import KubeLauncher

        launcher = KubeLauncher.from_settings(settings)
    else:
        from queue_manager.adapters.local import LocalLauncher

        def worker_env(producer: str) -> dict[str, str]:
            # A credential for this run of this step only (docs/security.md).
            return {Env.QM_URL: settings.worker_url, Env.QM_WORKER_TOKEN: tokens.token(producer)}

        launcher = LocalLauncher(
            settings.data_dir / "jobs",
            worker_env=worker_env,
            extra_args=shlex.split(settings.local_worker_args),
            command=shlex.split(settings.local_worker_command) or None,
            kill_timeout=settings.local_kill_timeout_seconds,
            hidden_env=frozenset(name.upper() for name in Settings.model_fields)
            | {"QUEUE_MANAGER_TOKEN"},
            secrets=local_secrets(settings),
            target_commands={
                t: argv for t in TARGETS if (argv := shlex.split(settings.command_for(t)))
            },
        )
    return Adapters(store, bus, launcher, build_oidc(settings), topics)


def build_oidc(settings: Settings) -> BearerVerifier | None:
    if settings.oidc_issuer is None:
        return None
    if not settings.oidc_audience:
        raise Misconfigured("OIDC_AUDIENCE: required with OIDC_ISSUER (the client id tokens name)")
    from queue_manager.adapters.oidc import OidcConfig, OidcVerifier

    config = OidcConfig(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        roles_claim=settings.oidc_roles_claim,
        role_map={claim: Role(role) for claim, role in settings.oidc_role_map.items()},
    )
    return OidcVerifier(config)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_policy(settings: Settings, *, can_authenticate: bool) -> AuthPolicy:
    """Zero set-up stays zero set-up on loopback; anywhere else, auth or an explicit opt-out."""
    metrics = settings.metrics_auth
    if settings.auth_mode is AuthMode.NONE:
        log.warning("auth disabled by AUTH_MODE=none: anyone who reaches the service is admin")
        return AuthPolicy(enabled=False)
    if can_authenticate:
        return AuthPolicy(enabled=True, metrics_need_viewer=metrics)
    if settings.auth_mode is AuthMode.ON:
        raise Misconfigured(
            "AUTH_MODE=on: set AUTH_TOKENS_FILE or OIDC_ISSUER, or no one could ever log in"
        )
    if _loopback(settings.host):
        log.warning(f"auth disabled: listening on {settings.host} only")
        return AuthPolicy(enabled=False)
    raise Misconfigured(
        f"AUTH_MODE: HOST={settings.host} is not a loopback address and no auth is configured; "
        "set AUTH_TOKENS_FILE or OIDC_ISSUER (docs/security.md), or AUTH_MODE=none to run open"
    )


def file_tokens(settings: Settings) -> list[ApiToken]:
    path = settings.auth_tokens_file
    if path is None:
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise Misconfigured(f"AUTH_TOKENS_FILE: cannot read {path}: {exc.strerror}") from None
    try:
        return read_tokens_file(text, datetime.fromtimestamp(path.stat().st_mtime, UTC))
    except ValueError as exc:
        raise Misconfigured(f"AUTH_TOKENS_FILE: {path} {exc}") from None


def session_secret(settings: Settings) -> bytes:
    if settings.auth_session_secret is not None:
        return settings.auth_session_secret.get_secret_value().encode()
    return file_secret(settings.data_dir / "session.secret", lambda: secrets.token_bytes(32))


def local_secrets(settings: Settings) -> dict[str, str]:
    """For local jobs, the values of the credentials `job_config` gives by reference: the
    service's own. The local launcher puts them in a job's environment as it starts, only."""
    kafka_password, arango_password = (
        secret.get_secret_value() if secret is not None else ""
        for secret in (settings.kafka_password, settings.arango_password)
    )
    kafka = {"username": settings.kafka_user or "", "password": kafka_password}
    arango = {"username": settings.arango_user, "password": arango_password}
    values = {name: kafka[key] for name, key in KAFKA_SECRET_KEYS.items()}
    values |= {name: arango[key] for name, key in ARANGO_SECRET_KEYS.items()}
    return {name: value for name, value in values.items() if value}


def job_ca_path(settings: Settings) -> str:
    """A job's CA_PATH: on Kubernetes with K8S_CA_SECRET or K8S_CA_CONFIGMAP, where the Job's
    pod mounts the CA; else, with Kafka over SASL_SSL (KAFKA_USER), the service's own CA_PATH
    (on Kubernetes the job's image must then carry the file there); else none."""
    on_kubernetes = settings.resolved_launcher is LauncherBackend.KUBERNETES
    if on_kubernetes and settings.k8s_ca_path:
        return settings.k8s_ca_path
    if settings.kafka_user and settings.ca_path is not None:
        return str(settings.ca_path)
    return ""


def job_config(settings: Settings) -> JobConfig:
    secret_env: dict[str, tuple[str, str]] = {}
    if settings.kafka_user:
        for name, key in KAFKA_SECRET_KEYS.items():
            secret_env[name] = (settings.kafka_secret_name, key)
    if settings.arango_url:
        for name, key in ARANGO_SECRET_KEYS.items():
            secret_env[name] = (settings.arango_secret_name, key)
    return JobConfig(
        images={t: settings.image_for(t) for t in TARGETS},
        allowed_images=frozenset(settings.allowed_images),
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers or "",
        arango_url=settings.arango_url or "",
        arango_db=settings.arango_db,
        control_topic=settings.queue_control_topic,
        events_topic=settings.queue_events_topic,
        ca_path=job_ca_path(settings),
        secret_env=secret_env,
    )


def create_app(
    settings: Settings | None = None,
    adapters: Adapters | None = None,
    *,
    clock: Clock | None = None,
) -> FastAPI:
    """`clock`: the one time every service and the API go by (default: the system's). Tests
    give one they move, or one that runs faster (tests/support/clocks.py); replicas sharing a
    store must be given the same."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    # Here too, not only in `serve`: `uvicorn --factory queue_manager.app:create_app` must honour
    # LOG_LEVEL and LOG_FORMAT as well.
    configure_logging(settings)
    metrics = Metrics()
    hub = Hub(
        metrics,
        heartbeat=settings.ws_heartbeat_seconds,
        buffer=settings.ws_client_buffer,
        idle=settings.ws_idle_seconds,
        flush=settings.ws_flush_seconds,
    )
    if settings.worker_token_secret is not None:
        tokens = WorkerTokens(settings.worker_token_secret.get_secret_value().encode())
    else:
        tokens = WorkerTokens.from_file(settings.data_dir / "worker-token.secret")
    adapters = adapters or build_adapters(settings, tokens)
    store, bus, launcher = adapters.store, adapters.bus, adapters.launcher
    relay = UpdateRelay(bus, hub)
    jobs = job_config(settings)
    limits = Limits(settings.max_running_queues, settings.max_running_jobs)
    stop_grace = timedelta(seconds=settings.stop_grace_seconds)
    rate_limits = RateLimits(
        store=store,
        groups=settings.rate_limit_group_rules,
        clock=clock,
        metrics=metrics,
        cache_seconds=settings.rate_limit_cache_seconds,
        release_per_second=settings.rate_limit_release_per_second,
    )
    engine = Engine(
        store=store,
        bus=bus,
        launcher=launcher,
        broadcaster=relay,
        metrics=metrics,
        clock=clock,
        jobs=jobs,
        limits=limits,
        topics=adapters.topics,
        rate_limits=rate_limits,
    )
    release = RateLimitRelease(
        engine,
        rate_limits,
        store=store,
        clock=clock,
        period=settings.rate_limit_poll_seconds,
    )
    deadlines = StopDeadlines(engine, store=store, clock=clock)
    job_events = JobEvents(
        engine,
        store=store,
        metrics=metrics,
        clock=clock,
        finished_job_grace=timedelta(seconds=settings.finished_job_grace_seconds),
    )
    identity = IdentityService(
        store,
        file_tokens(settings),
        adapters.oidc,
        logouts=store,
        refresh_seconds=settings.auth_refresh_seconds,
        clock=clock,
    )
    queue_service = QueueService(
        engine,
        deadlines,
        store=store,
        bus=bus,
        metrics=metrics,
        clock=clock,
        stop_grace=stop_grace,
        allowed_images=jobs.allowed_images,
        max_running_queues=limits.queues,
        loader_types=settings.loader_types,
        retry_defaults=settings.retry_defaults,
    )
    backfills = BackfillService(
        queue_service, engine, store=store, bus=bus, clock=clock, stop_grace=stop_grace
    )
    schedules = ScheduleService(
        queue_service,
        engine,
        store=store,
        bus=bus,
        clock=clock,
        count_run=metrics.schedule_run,
        poll_seconds=settings.schedule_poll_seconds,
    )
    on_kafka = settings.resolved_bus is BusBackend.KAFKA
    # Kafka delivers unkeyed reports out of order; the in-process bus never does.
    window = settings.telemetry_reorder_seconds if on_kafka else 0.0
    dispatcher = Dispatcher(engine, bus=bus, metrics=metrics, clock=clock, reorder_window=window)
    reconciler = Reconciler(
        engine,
        job_events,
        deadlines,
        store=store,
        launcher=launcher,
        clock=clock,
        launch_grace=timedelta(seconds=settings.launch_grace_seconds),
        period=settings.reconcile_seconds,
    )
    step_watch = StepWatch(
        engine,
        store=store,
        metrics=metrics,
        clock=clock,
        topics=adapters.topics,
        period=settings.step_watch_seconds,
        window=window,
        quiet=settings.connector_drain_quiet_seconds,
    )
    pruner = None
    if settings.retention_days is not None:
        pruner = Pruner(
            store=store,
            metrics=metrics,
            clock=clock,
            keep=timedelta(days=settings.retention_days),
            period=settings.retention_sweep_seconds,
        )
    catalog = CatalogService(store)
    gaps_file = settings.expected_gaps_file
    coverage_service = CoverageService(
        store,
        backfills,
        clock=clock,
        file_gaps=read_gaps_file(gaps_file) if gaps_file is not None else (),
        count_cells=metrics.set_coverage_counts,
        metrics_period=settings.coverage_metrics_seconds,
    )
    container = Container(
        settings=settings,
        queues=queue_service,
        backfills=backfills,
        schedules=schedules,
        workers=WorkerReports(store, bus),
        catalog=catalog,
        plans=PlanService(queue_service, catalog),
        coverage=coverage_service,
        health=Health(store, bus, launcher),
        logs=StepLogs(store, launcher),
        hub=hub,
        metrics=metrics,
        tokens=tokens,
        auth=auth_policy(settings, can_authenticate=identity.configured),
        identity=identity,
        sessions=Sessions(session_secret(settings), settings.auth_session_seconds, clock),
        rate_limits=rate_limits,
        overview=OverviewService(store, clock),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        supervisor = Supervisor()
        # A dependency that is down at start-up must not keep the service from starting: it
        # stays live, reports not ready, and connects as soon as the dependency is back.
        for name, connect in (
            ("store", store.open),
            ("bus", bus.start),
            ("launcher", launcher.start),
        ):
            await _connect_or_retry(supervisor, name, connect)
        supervisor.start("dispatcher", dispatcher.run)
        supervisor.start("update-sender", relay.send_loop)
        supervisor.start("update-receiver", relay.receive_loop)
        supervisor.start("job-watcher", reconciler.watch)
        # Its first pass is the start-up reconcile: queues left running by a previous run resume.
        if pruner is not None:
            supervisor.start("retention", pruner.run)
        supervisor.start("reconciler", reconciler.run)
        supervisor.start("step-watch", step_watch.run)
        supervisor.start("scheduler", schedules.run)
        supervisor.start("rate-limit-release", release.run)
        # The ledger of queues stored by a release without it (docs/coverage.md): in the
        # background, so readiness does not wait for it.
        supervisor.start("coverage-derivation", coverage_service.run_derivation)
        supervisor.start("coverage-metrics", coverage_service.run_metrics)
        container.started = True
        # What exists now (modules, the app, clients) lives as long as the process: keep the
        # garbage collector from rescanning it each time a telemetry batch allocates thousands
        # of short-lived objects (~10 % of the dispatcher's time, bench/PROFILE.md).
        gc.freeze()
        log.info(
            "queue-manager started",
            store=store.name,
            bus=bus.name,
            launcher=launcher.name,
            version=__version__,
        )
        try:
            yield
        finally:
            container.started = False
            await hub.close()
            await supervisor.stop()
            await deadlines.close()
            await identity.close()
            await launcher.stop()
            await bus.stop()
            await store.close()
            log.info("queue-manager stopped")

    app = FastAPI(
        title="queue-manager",
        version=__version__,
        description="Control plane of the StreamForge market-data platform: starts, stops and "
        "tracks queues of microservice jobs. Every answer is the envelope "
        '`{"status", "message", "data"}`.',
        lifespan=lifespan,
    )
    app.state.container = container
    errors.install(app)
    routers = (
        plans,
        queues,
        collections,
        coverage,
        schedules_api,
        history,
        logs,
        rate_limits_api,
        stats_api,
        health,
        live,
        internal,
        auth_routes,
        ui,
    )
    for router in (module.router for module in routers):
        app.include_router(router)
    app.mount(ui.PREFIX, ui.files(settings.oidc_issuer), name="ui")
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(HTTPMetrics, metrics=metrics)
    return app


async def _connect_or_retry(
    supervisor: Supervisor, name: str, connect: Callable[[], Awaitable[None]]
) -> None:
    try:
        await connect()
        return
    except DependencyUnavailable as exc:
        log.warning(
            "dependency unavailable at start-up, will retry", dependency=name, reason=exc.detail
        )

    async def retry() -> None:
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                await connect()
            except DependencyUnavailable as exc:
                log.warning("dependency still unavailable", dependency=name, reason=exc.detail)
                delay = min(delay * 2, 15.0)
                continue
            log.info("dependency connected", dependency=name)
            return

    supervisor.start(f"{name}-connect", retry)


def configure_logging(settings: Settings) -> None:
    qm_logging.configure(settings.log_level, settings.log_format.value)
