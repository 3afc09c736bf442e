"""The test kube-apiserver is a real one: authentication, RBAC, Job validation, the status
subresource and watches behave as on a cluster (docs/operations.md relies on all of them)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.models.batch_v1 import JobSpec
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.models.rbac_v1 import PolicyRule, RoleRef, Subject
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Namespace, Secret, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding
from lightkube.types import CascadeType, PatchType

from tests.support.kube_apiserver import (
    KubeAPIServer,
    KubeRequestError,
    failed_job_status,
    kube_version,
    rfc3339,
    running_job_status,
    succeeded_job_status,
)

pytestmark = pytest.mark.kube

QUEUE_LABEL = "streamforge.io/queue-id"
MANAGED_BY = {"app.kubernetes.io/managed-by": "queue-manager"}
WATCH_TIMEOUT_S = 15.0


def make_job(name: str, queue_id: str, namespace: str | None = None) -> Job:
    container = Container(name="worker", image="example.invalid/worker:1", command=["true"])
    return Job(
        metadata=ObjectMeta(
            name=name, namespace=namespace, labels={**MANAGED_BY, QUEUE_LABEL: queue_id}
        ),
        spec=JobSpec(
            backoffLimit=0,
            ttlSecondsAfterFinished=600,
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels={QUEUE_LABEL: queue_id}),
                spec=PodSpec(restartPolicy="Never", containers=[container]),
            ),
        ),
    )


def client_for(kubeconfig: Path) -> AsyncClient:
    return AsyncClient(KubeConfig.from_file(kubeconfig), field_manager="queue-manager-tests")


@pytest.fixture
async def admin(kube_apiserver: KubeAPIServer) -> AsyncIterator[AsyncClient]:
    client = client_for(kube_apiserver.kubeconfig_path)
    try:
        yield client
    finally:
        await client.close()


def condition_types(job: Job) -> set[str]:
    assert job.status is not None
    return {c.type for c in job.status.conditions or [] if c.status == "True"}


async def test_server_is_the_built_version_and_authenticates(kube_apiserver: KubeAPIServer) -> None:
    version = await asyncio.to_thread(kube_apiserver.request, "GET", "/version")
    assert version["gitVersion"] == kube_version()
    with pytest.raises(KubeRequestError) as info:
        await asyncio.to_thread(kube_apiserver.request, "GET", "/api/v1/namespaces", token="wrong")
    assert info.value.status == 401


async def test_namespace_and_job_round_trip(admin: AsyncClient) -> None:
    namespace = f"qm-{uuid.uuid4().hex[:8]}"
    created_ns = await admin.create(Namespace(metadata=ObjectMeta(name=namespace)))
    assert created_ns.metadata is not None and created_ns.metadata.name == namespace

    queue_id = uuid.uuid4().hex
    await admin.create(make_job("qm-roundtrip-0-loader", queue_id, namespace))

    job = await admin.get(Job, "qm-roundtrip-0-loader", namespace=namespace)
    assert job.metadata is not None and job.metadata.labels is not None
    assert job.metadata.labels[QUEUE_LABEL] == queue_id
    assert job.spec is not None and job.spec.backoffLimit == 0
    assert job.spec.template.spec is not None
    assert job.spec.template.spec.containers[0].image == "example.invalid/worker:1"
    # Nothing runs Jobs here: no controller-manager, so the status stays empty.
    assert not condition_types(job)

    listed = [j async for j in admin.list(Job, namespace=namespace, labels={QUEUE_LABEL: queue_id})]
    assert [j.metadata.name for j in listed if j.metadata] == ["qm-roundtrip-0-loader"]

    # batch/v1 Jobs default to orphaning their Pods: a plain delete only adds the "orphan"
    # finalizer, which nothing removes without the garbage collector (no controller-manager
    # runs here). A Background delete removes the Job at once, here as on a real cluster.
    await admin.delete(Job, "qm-roundtrip-0-loader", namespace=namespace)
    terminating = await admin.get(Job, "qm-roundtrip-0-loader", namespace=namespace)
    assert terminating.metadata is not None
    assert terminating.metadata.deletionTimestamp is not None
    assert terminating.metadata.finalizers == ["orphan"]

    await admin.delete(
        Job, "qm-roundtrip-0-loader", namespace=namespace, cascade=CascadeType.BACKGROUND
    )
    with pytest.raises(ApiError) as info:
        await admin.get(Job, "qm-roundtrip-0-loader", namespace=namespace)
    assert info.value.status.code == 404


async def test_job_status_moves_to_failed_through_the_status_subresource(
    admin: AsyncClient, kube_namespace: str
) -> None:
    await admin.create(make_job("qm-status-0-loader", "q-status", kube_namespace))

    running = await admin.patch(
        Job.Status, "qm-status-0-loader", {"status": running_job_status()},
        namespace=kube_namespace, patch_type=PatchType.MERGE,
    )  # fmt: skip
    assert running.status is not None and running.status.active == 1
    start_time = running.status.startTime
    assert start_time is not None

    # The API server validates terminal status like the Job controller writes it: a Failed
    # condition without FailureTarget is rejected (422), as is completionTime on a failed Job.
    bare_failed = failed_job_status()
    bare_failed["conditions"] = [c for c in bare_failed["conditions"] if c["type"] == "Failed"]
    with pytest.raises(ApiError) as info:
        await admin.patch(
            Job.Status, "qm-status-0-loader", {"status": bare_failed},
            namespace=kube_namespace, patch_type=PatchType.MERGE,
        )  # fmt: skip
    assert info.value.status.code == 422
    assert "FailureTarget" in (info.value.status.message or "")
    with pytest.raises(ApiError) as info:
        await admin.patch(
            Job.Status, "qm-status-0-loader",
            {"status": {**failed_job_status(), "completionTime": rfc3339()}},
            namespace=kube_namespace, patch_type=PatchType.MERGE,
        )  # fmt: skip
    assert info.value.status.code == 422
    assert "completionTime" in (info.value.status.message or "")

    await admin.patch(
        Job.Status, "qm-status-0-loader",
        {"status": failed_job_status(start_time=start_time.strftime("%Y-%m-%dT%H:%M:%SZ"))},
        namespace=kube_namespace, patch_type=PatchType.MERGE,
    )  # fmt: skip

    job = await admin.get(Job, "qm-status-0-loader", namespace=kube_namespace)
    assert {"Failed", "FailureTarget"} <= condition_types(job)
    assert job.status is not None and job.status.failed == 1 and not job.status.active
    assert job.status.completionTime is None


async def test_job_status_moves_to_complete(admin: AsyncClient, kube_namespace: str) -> None:
    await admin.create(make_job("qm-done-0-loader", "q-done", kube_namespace))
    await admin.patch(
        Job.Status, "qm-done-0-loader", {"status": succeeded_job_status()},
        namespace=kube_namespace, patch_type=PatchType.MERGE,
    )  # fmt: skip
    job = await admin.get(Job, "qm-done-0-loader", namespace=kube_namespace)
    assert {"Complete", "SuccessCriteriaMet"} <= condition_types(job)
    assert job.status is not None and job.status.completionTime is not None


async def test_watch_by_label_selector_sees_creation_and_status_change(
    admin: AsyncClient, kube_namespace: str
) -> None:
    queue_id = uuid.uuid4().hex
    events: asyncio.Queue[tuple[str, Job]] = asyncio.Queue()

    async def watch() -> None:
        async for kind, job in admin.watch(
            Job, namespace=kube_namespace, labels={QUEUE_LABEL: queue_id}
        ):
            await events.put((kind, job))

    async def next_event() -> tuple[str, str, set[str]]:
        kind, job = await asyncio.wait_for(events.get(), WATCH_TIMEOUT_S)
        assert job.metadata is not None and job.metadata.name is not None
        return kind, job.metadata.name, condition_types(job) if job.status else set()

    watcher = asyncio.create_task(watch())
    try:
        # No wait for the watch to open: one opened later lists the Job as ADDED all the same.
        await admin.create(make_job("qm-other-0-loader", "another-queue", kube_namespace))
        await admin.create(make_job("qm-watched-0-loader", queue_id, kube_namespace))
        assert await next_event() == ("ADDED", "qm-watched-0-loader", set())

        await admin.patch(
            Job.Status, "qm-watched-0-loader", {"status": failed_job_status()},
            namespace=kube_namespace, patch_type=PatchType.MERGE,
        )  # fmt: skip
        kind, name, conditions = await next_event()
        assert (kind, name) == ("MODIFIED", "qm-watched-0-loader")
        assert "Failed" in conditions

        await admin.delete(
            Job, "qm-watched-0-loader", namespace=kube_namespace, cascade=CascadeType.BACKGROUND
        )
        kind, name, _ = await next_event()
        assert (kind, name) == ("DELETED", "qm-watched-0-loader")
        assert events.empty()  # the other queue's Job never showed up
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher


async def test_service_account_bound_to_a_role_can_only_do_what_it_allows(
    kube_apiserver: KubeAPIServer, admin: AsyncClient, kube_namespace: str, tmp_path: Path
) -> None:
    namespace = kube_namespace
    await admin.create(ServiceAccount(metadata=ObjectMeta(name="launcher", namespace=namespace)))
    await admin.create(
        Role(
            metadata=ObjectMeta(name="queue-manager", namespace=namespace),
            rules=[
                PolicyRule(apiGroups=["batch"], resources=["jobs"],
                           verbs=["create", "get", "list", "watch", "delete"]),
                PolicyRule(apiGroups=[""], resources=["pods"], verbs=["get", "list", "watch"]),
            ],
        ),
    )  # fmt: skip
    await admin.create(
        RoleBinding(
            metadata=ObjectMeta(name="queue-manager", namespace=namespace),
            roleRef=RoleRef(
                apiGroup="rbac.authorization.k8s.io", kind="Role", name="queue-manager"
            ),
            subjects=[Subject(kind="ServiceAccount", name="launcher", namespace=namespace)],
        ),
    )

    token = await asyncio.to_thread(kube_apiserver.service_account_token, namespace, "launcher")
    kubeconfig = kube_apiserver.write_kubeconfig(
        tmp_path / "launcher.kubeconfig", token, namespace=namespace
    )
    client = client_for(kubeconfig)
    try:
        created = await client.create(make_job("qm-rbac-0-loader", "q-rbac"))  # kubeconfig's ns
        assert created.metadata is not None and created.metadata.namespace == namespace
        assert [j.metadata.name async for j in client.list(Job) if j.metadata] == [
            "qm-rbac-0-loader"
        ]

        for forbidden in (
            client.list(Secret, namespace=namespace),  # not in the Role
            client.list(Job, namespace="default"),  # a Role is one namespace's
        ):
            with pytest.raises(ApiError) as info:
                _ = [item async for item in forbidden]
            assert info.value.status.code == 403

        with pytest.raises(ApiError) as info:  # no "patch"/"update" on jobs/status
            await client.patch(
                Job.Status, "qm-rbac-0-loader", {"status": running_job_status()},
                patch_type=PatchType.MERGE,
            )  # fmt: skip
        assert info.value.status.code == 403

        await client.delete(Job, "qm-rbac-0-loader", cascade=CascadeType.BACKGROUND)
        with pytest.raises(ApiError) as info:
            await client.get(Job, "qm-rbac-0-loader")
        assert info.value.status.code == 404
    finally:
        await client.close()
