"""`KubeLauncher`: the `Launcher` port on Kubernetes Jobs, interchangeable with the embedded
`LocalLauncher` (tests/launcher runs one contract suite on both).

* `launch` creates the Job; 409 AlreadyExists is a success (names are deterministic and unique
  per queue, step and target, so a retried launch is idempotent). 400/403/422 become
  `LaunchFailed` (the step fails with the API server's reason); anything else the cluster or
  the connection answers (connection errors, 5xx, 401, 429) is `DependencyUnavailable` and the
  reconciler launches again later. Any other error is a bug: it is not caught here.
* `delete` uses `propagationPolicy=Background` so the Job's pods go too; 404 is a success.
* `list_jobs` lists the Jobs labelled `app.kubernetes.io/managed-by=queue-manager`, and their
  pods (one more list call) for what the Jobs do not say (`pods.py`): an image pull error or a
  container that cannot be configured fails the Job at once (`error_class` configuration), an
  unschedulable pod is `pending` with the scheduler's message, a lost pod (OOMKilled, Evicted,
  node lost) classes a failed Job `infrastructure`; `activeDeadlineSeconds` passed is `timeout`.
* `watch`: see `watch.py`.
* Every HTTP request, including the watch's own reconnections, first takes a token from a
  client-side token bucket (`kube_qps`/`kube_burst`, `rate_limit.py`).

The client is created in `start()` (the lifespan), never at import or construction time.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import structlog
from lightkube import ApiError, AsyncClient
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod
from lightkube.types import CascadeType

from queue_manager.adapters.kube import watch as job_watch
from queue_manager.adapters.kube.config import (
    SERVICE_ACCOUNT_DIR,
    check_config,
    connect,
    running_in_a_pod,
    template_from_settings,
)
from queue_manager.adapters.kube.errors import DEPENDENCY, REFUSED, unavailable
from queue_manager.adapters.kube.logs import pod_logs
from queue_manager.adapters.kube.manifests import SELECTOR, JobTemplate, build_job, job_status
from queue_manager.adapters.kube.pods import PodWord, job_of, with_pods, words_by_job
from queue_manager.adapters.kube.rate_limit import TokenBucket
from queue_manager.domain.errors import DependencyUnavailable, LaunchFailed
from queue_manager.ports import JobPhase, JobSpec, JobStatus
from queue_manager.settings import Settings

log = structlog.get_logger(__name__)


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
        """Misconfigured when there is no Kubernetes configuration to use (start-up stops)."""
        kubeconfig = settings.kubeconfig or os.environ.get("KUBECONFIG")
        # In a Pod, its ServiceAccount; elsewhere KUBECONFIG (else ~/.kube/config).
        in_cluster = running_in_a_pod()
        path = Path(kubeconfig) if kubeconfig else None
        check_config(path, in_cluster, Path(SERVICE_ACCOUNT_DIR))
        return cls(
            settings.k8s_namespace,
            template=template_from_settings(settings),
            kubeconfig=path,
            in_cluster=in_cluster,
            qps=settings.kube_qps,
            burst=settings.kube_burst,
            watch_timeout=settings.kube_watch_timeout_seconds,
            watch_silence=settings.kube_watch_silence_seconds,
        )

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._client is not None:
            return
        self._client, server = connect(
            kubeconfig=self._kubeconfig,
            in_cluster=self._in_cluster,
            service_account_dir=self._service_account_dir,
            namespace=self.namespace,
            bucket=self.bucket,
            request_timeout=self._request_timeout,
        )
        log.info(
            "kubernetes launcher ready",
            server=server,
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
            raise unavailable("ping", exc) from exc

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
            if code in REFUSED:
                why = " ".join(str(p) for p in (code, exc.status.reason) if p)
                raise LaunchFailed(
                    f"Kubernetes refused job {spec.name} ({why}): {exc.status.message}"
                ) from exc
            raise unavailable(f"create job {spec.name}", exc) from exc
        except httpx2.HTTPError as exc:  # connection, TLS, time-out, or not the API answering
            raise unavailable(f"create job {spec.name}", exc) from exc
        bound.info("job created", namespace=self.namespace)

    async def delete(self, name: str) -> None:
        try:
            await self.client.delete(
                Job, name, namespace=self.namespace, cascade=CascadeType.BACKGROUND
            )
        except ApiError as exc:
            if exc.status.code == 404:
                return
            raise unavailable(f"delete job {name}", exc) from exc
        except httpx2.HTTPError as exc:  # connection, TLS, time-out, or not the API answering
            raise unavailable(f"delete job {name}", exc) from exc
        log.info("job deleted", job=name, namespace=self.namespace)

    async def list_jobs(self) -> list[JobStatus]:
        statuses, _ = await self._list()
        return statuses

    def logs(self, name: str, *, tail: int | None, follow: bool) -> AsyncIterator[bytes]:
        return pod_logs(self.client, self.namespace, name, tail=tail, follow=follow)

    def watch(self) -> AsyncIterator[JobStatus]:
        return job_watch.follow(
            self._list, self._events, silence=self._watch_silence, retry_max=self._retry_max
        )

    # -- internals ----------------------------------------------------------------------------

    async def _list(self) -> job_watch.Listing:
        try:
            listing = self.client.list(Job, namespace=self.namespace, labels=SELECTOR)
            jobs = [job async for job in listing]
            version: str | None = listing.resourceVersion
        except httpx2.HTTPError as exc:  # ApiError included
            raise unavailable("list jobs", exc) from exc
        words = await self._pod_words() if jobs else {}
        statuses = []
        for job in jobs:
            status = job_status(job)
            if status is None:
                name = job.metadata.name if job.metadata is not None else None
                log.warning("skipping a managed job without queue/step labels", job=name)
                continue
            statuses.append(with_pods(status, words.get(status.name)))
        return statuses, version

    async def _pod_words(self, job_name: str | None = None) -> dict[str, PodWord]:
        """What our Jobs' pods (or one Job's) say that the Jobs do not: one list call."""
        try:
            pods = [
                pod
                async for pod in self.client.list(Pod, namespace=self.namespace, labels=SELECTOR)
                if job_name is None or job_of(pod) == job_name
            ]
        except httpx2.HTTPError as exc:  # ApiError included
            raise unavailable("list pods", exc) from exc
        return words_by_job(pods)

    async def _events(self, version: str | None) -> AsyncIterator[tuple[str, JobStatus]]:
        """The Job watch's events, a failed Job's told with how its pod was lost."""
        async for kind, status in job_watch.job_events(
            self.client, self.namespace, version, self._watch_timeout, self._watch_silence
        ):
            if status.phase is JobPhase.FAILED and status.error_class is None:
                words = await self._pod_words(status.name)
                status = with_pods(status, words.get(status.name))
            yield kind, status
