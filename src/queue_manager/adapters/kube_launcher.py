"""Production launcher: each step is a Kubernetes Job (docs/worker-protocol.md, docs/operations.md).

Client library: `lightkube` (`AsyncClient`). Its resources are typed models (the manifest below
is checked by mypy, not a free-form dict), it is small (httpx + PyYAML, no generated
OpenAPI client), and it is async-native, so list/watch/create run on the service's event loop
without threads. `kubernetes_asyncio` would have given a far larger generated client and
untyped dicts.

Behaviour, interchangeable with the embedded `LocalLauncher`:

* `launch` creates the Job; 409 AlreadyExists is a success (names are deterministic, so a
  retried launch is idempotent). 400/403/422 become `LaunchFailed` (the step fails with the API
  server's reason); anything else (connection errors, 5xx, 401, 429) is `DependencyUnavailable`
  and the reconciler launches again later.
* `delete` uses `propagationPolicy=Background` so the Job's pods go too; 404 is a success.
* `list_jobs` lists the Jobs labelled `app.kubernetes.io/managed-by=queue-manager`.
* `watch` lists, then watches from the list's resourceVersion; on 410 Gone, an error, or a watch
  that stays silent it re-lists (reporting what changed meanwhile, vanished Jobs as GONE) and
  resumes.
* Every HTTP request, including the watch's own reconnections, first takes a token from a
  client-side token bucket (`kube_qps`/`kube_burst`), so a burst of launches never floods the
  API server.

The client is created in `start()` (the lifespan), never at import or construction time:
in-cluster config when running in a Pod, else `KUBECONFIG` (or `~/.kube/config`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import structlog
from lightkube import ApiError, AsyncClient, ConfigError, KubeConfig
from lightkube.config.client_adapter import verify_cluster
from lightkube.models.batch_v1 import JobSpec as KubeJobSpec
from lightkube.models.core_v1 import (
    Container,
    EnvVar,
    EnvVarSource,
    PodSpec,
    PodTemplateSpec,
    ResourceRequirements,
    SecretKeySelector,
)
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.types import CascadeType, OnErrorAction, OnErrorResult

from queue_manager.domain.errors import DependencyUnavailable, LaunchFailed
from queue_manager.ports import JobPhase, JobSpec, JobStatus
from queue_manager.settings import Settings

log = structlog.get_logger(__name__)

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "queue-manager"
QUEUE_LABEL = "streamforge.io/queue-id"
STEP_LABEL = "streamforge.io/step"
TARGET_LABEL = "streamforge.io/target"
#: typed as lightkube's label selector (a dict of str to str | operator)
SELECTOR: dict[str, Any] = {MANAGED_BY_LABEL: MANAGED_BY}
FIELD_MANAGER = "queue-manager"
DEPENDENCY = "launcher"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

#: API answers that mean "this manifest will never be accepted": the step fails.
_REFUSED = frozenset({400, 403, 422})


# -- rate limiting ------------------------------------------------------------------------------


class TokenBucket:
    """Client-side QPS/burst limit: `burst` requests at once, then `qps` per second.

    A token is taken at the moment a request really goes, never reserved ahead: a caller that
    wakes late (a busy event loop) finds the bucket as time refilled it, so no window of any
    length ever carries more than `burst + qps * length` requests. Callers queue on a lock,
    which asyncio hands over first come, first served. `qps <= 0` disables the limit.
    """

    def __init__(
        self, qps: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.qps = float(qps)
        self.burst = max(int(burst), 1)
        self._clock = clock
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now

    async def acquire(self) -> None:
        if self.qps <= 0:
            return
        self._refill()
        if self._tokens >= 1.0 and not self._lock.locked():
            self._tokens -= 1.0  # the common case: no wait, no lock
            return
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.qps)


class _RateLimitedTransport(httpx2.AsyncBaseTransport):
    """Every request the client sends (create, list, delete, each watch connection...) waits
    for a token first: the limit cannot be bypassed by a code path that forgot it."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, bucket: TokenBucket) -> None:
        self._inner = inner
        self._bucket = bucket

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await self._bucket.acquire()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


# -- manifest -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobTemplate:
    """The configurable parts of every Job (docs/operations.md)."""

    ttl_seconds_after_finished: int | None = 3600
    #: None: no deadline (streaming loaders run until stopped)
    active_deadline_seconds: int | None = None
    requests: dict[str, str] = field(default_factory=lambda: {"cpu": "100m", "memory": "256Mi"})
    limits: dict[str, str] = field(default_factory=lambda: {"memory": "1Gi"})
    node_selector: dict[str, str] = field(default_factory=dict)
    service_account_name: str | None = None
    image_pull_policy: str | None = None


def build_job(spec: JobSpec, template: JobTemplate, namespace: str | None = None) -> Job:
    """The Job for one step. Credentials only ever appear as `secretKeyRef`s."""
    if spec.image is None:
        raise LaunchFailed(f"job {spec.name}: no image for target {spec.target!r}")
    labels = {
        MANAGED_BY_LABEL: MANAGED_BY,
        QUEUE_LABEL: spec.queue_id,
        STEP_LABEL: str(spec.step_index),
        TARGET_LABEL: spec.target,
    }
    literal = {name: value for name, value in spec.env.items() if name not in spec.secret_env}
    env = [EnvVar(name=name, value=value) for name, value in sorted(literal.items())]
    env += [
        EnvVar(
            name=name,
            valueFrom=EnvVarSource(secretKeyRef=SecretKeySelector(name=secret, key=key)),
        )
        for name, (secret, key) in sorted(spec.secret_env.items())
    ]
    resources = ResourceRequirements(
        requests=dict(template.requests) or None, limits=dict(template.limits) or None
    )
    container = Container(
        name="worker",
        image=spec.image,
        env=env,
        resources=resources,
        imagePullPolicy=template.image_pull_policy,
    )
    return Job(
        metadata=ObjectMeta(name=spec.name, namespace=namespace, labels=labels),
        spec=KubeJobSpec(
            backoffLimit=max(spec.max_retries, 0),
            ttlSecondsAfterFinished=template.ttl_seconds_after_finished,
            activeDeadlineSeconds=template.active_deadline_seconds,
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels=dict(labels)),
                spec=PodSpec(
                    containers=[container],
                    restartPolicy="Never",
                    automountServiceAccountToken=False,
                    serviceAccountName=template.service_account_name,
                    nodeSelector=dict(template.node_selector) or None,
                ),
            ),
        ),
    )


def job_status(job: Job) -> JobStatus | None:
    """Our view of a Job; None for a Job whose labels are not ours (it is skipped)."""
    meta = job.metadata
    labels = (meta.labels if meta is not None else None) or {}
    name = meta.name if meta is not None else None
    queue_id = labels.get(QUEUE_LABEL)
    step = labels.get(STEP_LABEL, "")
    if not name or not queue_id or not step.isdigit():
        return None
    phase, message = JobPhase.ACTIVE, None
    failed = 0
    status = job.status
    if status is not None:
        failed = status.failed or 0
        for condition in status.conditions or []:
            if condition.status != "True":
                continue
            if condition.type == "Complete":
                phase, message = JobPhase.SUCCEEDED, None
                break
            if condition.type == "Failed":
                reason = condition.reason or "Failed"
                detail = condition.message or ""
                phase = JobPhase.FAILED
                message = f"job failed: {reason}" + (f": {detail}" if detail else "")
                break
    backoff = job.spec.backoffLimit if job.spec is not None else None
    attempts = failed + 1
    if backoff is not None:
        attempts = min(attempts, backoff + 1)
    return JobStatus(
        name=name,
        queue_id=queue_id,
        step_index=int(step),
        phase=phase,
        attempts=max(attempts, 1),
        message=message,
    )


# -- settings helpers ---------------------------------------------------------------------------


def _resources(cpu: str, memory: str) -> dict[str, str]:
    """An empty value means none of that resource."""
    return {k: v.strip() for k, v in (("cpu", cpu), ("memory", memory)) if v.strip()}


# -- the launcher -------------------------------------------------------------------------------


class KubeLauncher:
    name = "kubernetes"

    def __init__(
        self,
        namespace: str,
        *,
        template: JobTemplate | None = None,
        kubeconfig: Path | None = None,
        in_cluster: bool | None = None,
        service_account_dir: Path | str = SERVICE_ACCOUNT_DIR,
        qps: float = 20.0,
        burst: int = 40,
        request_timeout: float = 10.0,
        watch_timeout: int = 240,
        watch_silence: float = 300.0,
        retry_max: float = 30.0,
    ) -> None:
        self.namespace = namespace
        self.template = template or JobTemplate()
        self._kubeconfig = kubeconfig
        self._in_cluster = in_cluster
        self._service_account_dir = Path(service_account_dir)
        self.bucket = TokenBucket(qps, burst)
        self._request_timeout = request_timeout
        self._watch_timeout = watch_timeout
        self._watch_silence = watch_silence
        self._retry_max = retry_max
        self._client: AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KubeLauncher:
        template = JobTemplate(
            ttl_seconds_after_finished=settings.k8s_job_ttl_seconds,
            active_deadline_seconds=settings.k8s_job_active_deadline_seconds,
            requests=_resources(settings.k8s_job_cpu_request, settings.k8s_job_memory_request),
            limits=_resources(settings.k8s_job_cpu_limit, settings.k8s_job_memory_limit),
            node_selector=dict(settings.k8s_node_selector),
            service_account_name=settings.k8s_job_service_account,
            image_pull_policy=settings.k8s_image_pull_policy,
        )
        kubeconfig = settings.kubeconfig or os.environ.get("KUBECONFIG")
        # In a Pod, its ServiceAccount; elsewhere KUBECONFIG (else ~/.kube/config).
        in_cluster = (
            bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
            and (Path(SERVICE_ACCOUNT_DIR) / "token").is_file()
        )
        return cls(
            settings.k8s_namespace,
            template=template,
            kubeconfig=Path(kubeconfig) if kubeconfig else None,
            in_cluster=in_cluster,
            qps=settings.kube_qps,
            burst=settings.kube_burst,
            watch_timeout=settings.kube_watch_timeout_seconds,
            watch_silence=settings.kube_watch_silence_seconds,
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def _load_config(self) -> KubeConfig:
        in_cluster = self._in_cluster
        if in_cluster is None:  # an explicit kubeconfig wins, else the Pod's ServiceAccount
            in_cluster = self._kubeconfig is None and bool(
                os.environ.get("KUBERNETES_SERVICE_HOST")
            )
        if in_cluster:
            return KubeConfig.from_service_account(self._service_account_dir)
        if self._kubeconfig is not None:
            return KubeConfig.from_file(self._kubeconfig)
        return KubeConfig.from_env()

    async def start(self) -> None:
        if self._client is not None:
            return
        try:
            config = self._load_config().get()
            if config is None or config.user is None:
                raise ConfigError("the kubeconfig has no current context or user")
            verify: ssl.SSLContext = verify_cluster(config.cluster, config.user, config.abs_file)
        except (ConfigError, OSError, KeyError, ValueError, ssl.SSLError) as exc:
            raise DependencyUnavailable(
                DEPENDENCY, f"no usable Kubernetes configuration: {exc}"
            ) from exc
        # A transport of our own so that every request passes the rate limiter; it carries
        # the TLS settings lightkube would otherwise give its default transport.
        transport = _RateLimitedTransport(httpx2.AsyncHTTPTransport(verify=verify), self.bucket)
        self._client = AsyncClient(
            config,
            namespace=self.namespace,
            timeout=httpx2.Timeout(self._request_timeout),
            field_manager=FIELD_MANAGER,
            transport=transport,
        )
        log.info(
            "kubernetes launcher ready",
            server=config.cluster.server,
            namespace=self.namespace,
            qps=self.bucket.qps,
            burst=self.bucket.burst,
        )

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except (httpx2.HTTPError, OSError) as exc:  # shutting down: nothing to retry
                log.warning("kubernetes client close failed", error=str(exc))

    @property
    def client(self) -> AsyncClient:
        if self._client is None:
            raise DependencyUnavailable(DEPENDENCY, "the Kubernetes client is not started")
        return self._client

    async def ping(self) -> None:
        try:
            async for _ in self.client.list(
                Job, namespace=self.namespace, labels=SELECTOR, chunk_size=1
            ):
                break
        except httpx2.HTTPError as exc:  # ApiError included
            raise _unavailable("ping", exc) from exc

    # -- port -----------------------------------------------------------------------------------

    async def launch(self, spec: JobSpec) -> None:
        job = build_job(spec, self.template, self.namespace)
        bound = log.bind(job=spec.name, queue_id=spec.queue_id, step=spec.step_index)
        try:
            await self.client.create(job)
        except ApiError as exc:
            code = exc.status.code
            if code == 409:
                # Names are unique per queue, step and target: the Job there is this step's.
                bound.info("job already exists, launch is a no-op")
                return
            if code in _REFUSED:
                why = " ".join(str(p) for p in (code, exc.status.reason) if p)
                raise LaunchFailed(
                    f"Kubernetes refused job {spec.name} ({why}): {exc.status.message}"
                ) from exc
            raise _unavailable(f"create job {spec.name}", exc) from exc
        except httpx2.HTTPError as exc:  # connection, TLS, time-out, or not the API answering
            raise _unavailable(f"create job {spec.name}", exc) from exc
        bound.info("job created", namespace=self.namespace)

    async def delete(self, name: str) -> None:
        try:
            await self.client.delete(
                Job, name, namespace=self.namespace, cascade=CascadeType.BACKGROUND
            )
        except ApiError as exc:
            if exc.status.code == 404:
                return
            raise _unavailable(f"delete job {name}", exc) from exc
        except httpx2.HTTPError as exc:  # connection, TLS, time-out, or not the API answering
            raise _unavailable(f"delete job {name}", exc) from exc
        log.info("job deleted", job=name, namespace=self.namespace)

    async def list_jobs(self) -> list[JobStatus]:
        statuses, _ = await self._list()
        return statuses

    async def watch(self) -> AsyncIterator[JobStatus]:
        known: dict[str, JobStatus] = {}
        failures = 0
        while True:
            try:
                statuses, version = await self._list()
            except DependencyUnavailable as exc:
                failures += 1
                delay = self._backoff(failures)
                log.warning("job list failed, retrying", reason=exc.detail, retry_in=delay)
                await asyncio.sleep(delay)
                continue
            current = {s.name: s for s in statuses}
            for name, old in list(known.items()):
                if name not in current:
                    del known[name]
                    yield _gone(old)
            for name, status in current.items():
                if known.get(name) != status:
                    known[name] = status
                    yield status
            try:
                async for kind, status in self._watch_from(version):
                    if kind == "DELETED":
                        last = known.pop(status.name, None)
                        if status.phase is not JobPhase.ACTIVE and last != status:
                            yield status  # how it ended, if that was missed
                        yield _gone(last or status)
                    elif known.get(status.name) != status:
                        known[status.name] = status
                        yield status
                    failures = 0
            except _Expired:
                log.info("job watch expired (410), re-listing")
            except _Silent:
                log.info("job watch silent, re-listing", silence=self._watch_silence)
            except DependencyUnavailable as exc:
                failures += 1
                delay = self._backoff(failures)
                log.warning("job watch failed, re-listing", reason=exc.detail, retry_in=delay)
                await asyncio.sleep(delay)

    # -- internals ----------------------------------------------------------------------------

    async def _list(self) -> tuple[list[JobStatus], str | None]:
        try:
            listing = self.client.list(Job, namespace=self.namespace, labels=SELECTOR)
            jobs = [job async for job in listing]
            version: str | None = listing.resourceVersion
        except httpx2.HTTPError as exc:  # ApiError included
            raise _unavailable("list jobs", exc) from exc
        statuses = []
        for job in jobs:
            status = job_status(job)
            if status is None:
                name = job.metadata.name if job.metadata is not None else None
                log.warning("skipping a managed job without queue/step labels", job=name)
                continue
            statuses.append(status)
        return statuses, version

    async def _watch_from(self, version: str | None) -> AsyncIterator[tuple[str, JobStatus]]:
        """Events after `version` until the watch expires (`_Expired`), stays silent
        (`_Silent`) or fails (`DependencyUnavailable`). Lightkube reconnects by itself, from
        the last seen resourceVersion, when the server ends a watch after `watch_timeout`."""
        stream = self.client.watch(
            Job,
            namespace=self.namespace,
            labels=SELECTOR,
            resource_version=version,
            server_timeout=self._watch_timeout,
            on_error=_raise_on_error,
        )
        events = stream.__aiter__()
        try:
            while True:
                try:
                    kind, job = await asyncio.wait_for(events.__anext__(), self._watch_silence)
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    raise _Silent from exc
                except httpx2.HTTPError as exc:  # ApiError included
                    if _status_code(exc) == 410:
                        raise _Expired from exc
                    raise _unavailable("watch jobs", exc) from exc
                if kind not in ("ADDED", "MODIFIED", "DELETED"):
                    continue  # BOOKMARK
                status = job_status(job)
                if status is not None:
                    yield kind, status
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                # Closing the stream of a watch that already failed may fail the same way.
                with contextlib.suppress(httpx2.HTTPError, OSError):
                    await aclose()

    def _backoff(self, failures: int) -> float:
        return float(min(self._retry_max, 0.5 * 2 ** min(failures, 10)) * random.uniform(0.8, 1))


class _Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class _Silent(Exception):
    """No event for too long: the watch may be stuck, list again."""


def _raise_on_error(exc: Exception, count: int) -> OnErrorResult:
    return OnErrorResult(OnErrorAction.RAISE)


def _gone(status: JobStatus) -> JobStatus:
    return JobStatus(
        name=status.name,
        queue_id=status.queue_id,
        step_index=status.step_index,
        phase=JobPhase.GONE,
        attempts=status.attempts,
        message="job deleted",
    )


def _status_code(exc: httpx2.HTTPError) -> int | None:
    if isinstance(exc, ApiError) and exc.status is not None:
        code = exc.status.code
        return int(code) if code is not None else None
    if isinstance(exc, httpx2.HTTPStatusError):
        return exc.response.status_code
    return None


def _unavailable(action: str, exc: httpx2.HTTPError) -> DependencyUnavailable:
    if isinstance(exc, ApiError) and exc.status is not None:
        detail = f"{action}: {exc.status.code} {exc.status.reason or ''} {exc.status.message or ''}"
    else:
        detail = f"{action}: {type(exc).__name__}: {exc}"
    return DependencyUnavailable(DEPENDENCY, " ".join(detail.split()))
