"""What the routes need, built once by the app factory and kept on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from queue_manager.api.hub import Hub
from queue_manager.api.sessions import Sessions
from queue_manager.api.worker_auth import WorkerTokens
from queue_manager.observability.metrics import Metrics
from queue_manager.services.backfills import BackfillService
from queue_manager.services.catalog import CatalogService
from queue_manager.services.coverage import CoverageService
from queue_manager.services.health import Health
from queue_manager.services.identity import IdentityService
from queue_manager.services.logs import StepLogs
from queue_manager.services.overview import OverviewService
from queue_manager.services.plans import PlanService
from queue_manager.services.queues import QueueService
from queue_manager.services.rate_limits import RateLimits
from queue_manager.services.schedules import ScheduleService
from queue_manager.services.workers import WorkerReports
from queue_manager.settings import Settings


@dataclass(frozen=True)
class AuthPolicy:
    #: False: loopback-only or AUTH_MODE=none, everyone is the anonymous admin
    enabled: bool
    metrics_need_viewer: bool = False


@dataclass
class Container:
    settings: Settings
    queues: QueueService
    #: a client's stop, retry and resubmit, which may name a backfill's parent or any queue
    backfills: BackfillService
    schedules: ScheduleService
    workers: WorkerReports
    health: Health
    logs: StepLogs
    hub: Hub
    metrics: Metrics
    tokens: WorkerTokens
    auth: AuthPolicy
    identity: IdentityService
    sessions: Sessions
    rate_limits: RateLimits
    overview: OverviewService
    #: the catalog of collections, and start requests checked in one pass / planned
    catalog: CatalogService
    plans: PlanService
    #: the coverage ledger: reads, fills, the expected-gap calendar (docs/coverage.md)
    coverage: CoverageService
    started: bool = False


async def get_container(conn: HTTPConnection) -> Container:
    # async on purpose: FastAPI runs a plain-def dependency in a thread pool, on every request.
    container: Container = conn.app.state.container
    return container
