"""What the launcher contract suite needs from each launcher, and one implementation per
launcher: `LocalLauncher` over a jobs directory, `KubeLauncher` against the real kube-apiserver.

Both sides play the part the launcher does not: for local jobs a stand-in worker process
(worker.py) that ends when told; for Kubernetes, where nothing runs pods, the Job controller
(status written through the /status subresource).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from lightkube import AsyncClient, KubeConfig
from lightkube.models.batch_v1 import JobSpec as KubeJobSpec
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.types import PatchType

from queue_manager.adapters.kube import KubeLauncher
from queue_manager.adapters.local import LocalLauncher
from queue_manager.domain.models import Target
from queue_manager.domain.naming import job_name
from queue_manager.ports import JobSpec, Launcher
from tests.support.job_watcher import Watcher as Watcher
from tests.support.kube_apiserver import KubeAPIServer, failed_job_status, succeeded_job_status
from tests.support.waiting import wait_until_async

WORKER = Path(__file__).with_name("worker.py")
FAILURE_MESSAGE = "the contract suite failed it"


def spec(queue_id: str, index: int = 0) -> JobSpec:
    """A step's job as the services would hand it over (no retries: a failure is final)."""
    return JobSpec(
        name=job_name(queue_id, index, Target.LOADER),
        queue_id=queue_id,
        step_index=index,
        target=Target.LOADER.value,
        image="example.invalid/loader:1",
        env={"QUEUE_ID": queue_id},
        secret_env={},
        max_retries=0,
    )


class Harness(Protocol):
    async def new_launcher(self) -> Launcher:
        """A started launcher over this test's jobs; another call gives another instance, as
        a restarted service would have."""
        ...

    async def end(self, name: str, *, ok: bool) -> None:
        """Make the job's worker end, successfully or not."""
        ...

    async def add_foreign_job(self) -> None:
        """Something beside our jobs that the launcher must not report as one."""
        ...

    async def close(self) -> None: ...


class LocalHarness:
    def __init__(self, root: Path) -> None:
        self.jobs = root / "jobs"
        self.control = root / "control"
        self.control.mkdir(parents=True)
        self._launchers: list[LocalLauncher] = []

    async def new_launcher(self) -> Launcher:
        launcher = LocalLauncher(
            self.jobs,
            worker_env=lambda _queue_id: {"CONTRACT_CONTROL_DIR": str(self.control)},
            command=[sys.executable, str(WORKER)],
            kill_timeout=2.0,
        )
        await launcher.start()
        self._launchers.append(launcher)
        return launcher

    async def end(self, name: str, *, ok: bool) -> None:
        tmp = self.control / f".{name}.tmp"
        tmp.write_text("0" if ok else "1")
        tmp.replace(self.control / name)

    async def add_foreign_job(self) -> None:
        (self.jobs / "not-a-job-record.json").write_text('{"hello": "world"}')

    async def close(self) -> None:
        # Workers outlive their launcher on purpose: end those a test left running.
        cleaner = await self.new_launcher()
        for job in await cleaner.list_jobs():
            await cleaner.delete(job.name)
        for launcher in self._launchers:
            await launcher.stop()


class KubeHarness:
    def __init__(self, server: KubeAPIServer, namespace: str) -> None:
        self.server = server
        self.namespace = namespace
        self.admin = AsyncClient(KubeConfig.from_file(server.kubeconfig_path))
        self._launchers: list[KubeLauncher] = []

    async def new_launcher(self) -> Launcher:
        launcher = KubeLauncher(
            self.namespace, kubeconfig=self.server.kubeconfig_path, in_cluster=False, qps=0
        )
        await launcher.start()
        self._launchers.append(launcher)
        return launcher

    async def end(self, name: str, *, ok: bool) -> None:
        status = succeeded_job_status() if ok else failed_job_status(message=FAILURE_MESSAGE)
        await self.admin.patch(
            Job.Status,
            name,
            {"status": status},
            namespace=self.namespace,
            patch_type=PatchType.MERGE,
        )

    async def add_foreign_job(self) -> None:
        job = Job(
            metadata=ObjectMeta(name="someone-elses-job", labels={"app": "other"}),
            spec=KubeJobSpec(
                template=PodTemplateSpec(
                    spec=PodSpec(
                        restartPolicy="Never",
                        containers=[Container(name="c", image="example.invalid/other:1")],
                    )
                )
            ),
        )
        await self.admin.create(job, namespace=self.namespace)

    async def close(self) -> None:
        for launcher in self._launchers:
            await launcher.stop()
        await self.admin.close()


async def eventually(
    check: Callable[[], object], within: float = 15.0, every: float = 0.05
) -> None:
    """Wait for `check()` (a value or an awaitable) to be truthy: the launcher tests' name for
    tests.support.waiting.wait_until_async."""
    await wait_until_async(check, within, every=every)
