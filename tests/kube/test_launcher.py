"""KubeLauncher against the real kube-apiserver (docs/worker-protocol.md, docs/operations.md).

Nothing runs Jobs there: the tests move Job status through the /status subresource, as the
Job controller would, and check what the launcher reports.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import AsyncClient, KubeConfig
from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod
from lightkube.types import CascadeType, PatchType

from queue_manager.adapters.kube import KubeLauncher
from queue_manager.adapters.kube.config import template_from_settings
from queue_manager.adapters.kube.manifests import build_job
from queue_manager.adapters.kube.rate_limit import TokenBucket
from queue_manager.domain.errors import DependencyUnavailable, LaunchFailed, LogsUnavailable
from queue_manager.ports import JobPhase
from tests.cli.helpers import free_port, run_cli
from tests.kube.test_launcher_helpers import (
    ARANGO_PASSWORD,
    KAFKA_PASSWORD,
    Watcher,
    apiserver_requests,
    historical_queue,
    make_launcher,
    settings,
    simple_spec,
    specs_for,
)
from tests.support.kube_apiserver import (
    KubeAPIServer,
    KubeRequestError,
    ensure_binaries,
    failed_job_status,
    running_job_status,
    start_kube_apiserver,
    succeeded_job_status,
)
from tests.support.waiting import wait_until_async

pytestmark = pytest.mark.kube

#: the variables every job gets (docs/worker-protocol.md)
WORKER_PROTOCOL_ENV = {
    "QUEUE_ID", "SYMBOL", "TYPE", "TIME_RANGE", "KAFKA_TOPIC", "COLLECTION_NAME",
    "TELEMETRY_PRODUCER_ID", "QUEUE_CONTROL_TOPIC", "QUEUE_EVENTS_TOPIC", "TELEMETRY_TOPIC",
    "KAFKA_BOOTSTRAP_SERVERS", "CA_PATH", "ARANGO_URL", "ARANGO_DB",
}  # fmt: skip
SECRET_ENV = {
    "KAFKA_USER": ("kafka-credentials", "username"),
    "KAFKA_PASSWORD": ("kafka-credentials", "password"),
    # The same credential under the names the platform's workers read.
    "KAFKA_USER_PRODUCER": ("kafka-credentials", "username"),
    "KAFKA_PASSWORD_PRODUCER": ("kafka-credentials", "password"),
    "KAFKA_USER_CONSUMER": ("kafka-credentials", "username"),
    "KAFKA_PASSWORD_CONSUMER": ("kafka-credentials", "password"),
    "ARANGO_USER": ("arango-credentials", "username"),
    "ARANGO_PASSWORD": ("arango-credentials", "password"),
}
CA_MOUNT = "/etc/streamforge/kafka-ca"


@pytest.fixture
async def admin(kube_apiserver: KubeAPIServer) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(KubeConfig.from_file(kube_apiserver.kubeconfig_path))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def launcher(
    kube_apiserver: KubeAPIServer, kube_namespace: str
) -> AsyncIterator[KubeLauncher]:
    launcher = make_launcher(kube_apiserver, kube_namespace)
    await launcher.start()
    try:
        yield launcher
    finally:
        await launcher.stop()


def stored_job(server: KubeAPIServer, namespace: str, name: str) -> dict[str, Any]:
    job: dict[str, Any] = server.request(
        "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"
    )
    return job


async def set_status(admin: AsyncClient, namespace: str, name: str, status: dict[str, Any]) -> None:
    await admin.patch(
        Job.Status, name, {"status": status}, namespace=namespace, patch_type=PatchType.MERGE
    )


async def start_time(admin: AsyncClient, namespace: str, name: str) -> str:
    job = await admin.get(Job, name, namespace=namespace)
    assert job.status is not None and job.status.startTime is not None
    return str(job.status.startTime.strftime("%Y-%m-%dT%H:%M:%SZ"))


# -- manifests ----------------------------------------------------------------------------------


async def test_stored_manifest_has_the_worker_protocol_env_and_no_literal_credential(
    kube_apiserver: KubeAPIServer, kube_namespace: str
) -> None:
    config = settings(k8s_namespace=kube_namespace, **{
        "kube_qps": 0, "k8s_job_ttl_seconds": 600, "k8s_job_active_deadline_seconds": 7200,
        "k8s_job_cpu_request": "250m", "k8s_job_memory_request": "128Mi",
        "k8s_job_cpu_limit": "2", "k8s_job_memory_limit": "2Gi",
        "k8s_node_selector": "pool=loaders,zone=a", "k8s_job_service_account": "streamforge-worker",
        "kubeconfig": str(kube_apiserver.kubeconfig_path), "k8s_ca_secret": "kafka-ca",
    })  # fmt: skip
    launcher = KubeLauncher.from_settings(config)
    queue_id = str(uuid.uuid4())
    queue = historical_queue(queue_id)
    specs = specs_for(queue, config)
    await launcher.start()
    try:
        for spec in specs:
            await launcher.launch(spec)
    finally:
        await launcher.stop()

    for spec, step in zip(specs, queue.steps, strict=True):
        raw = await asyncio.to_thread(stored_job, kube_apiserver, kube_namespace, spec.name)
        text = json.dumps(raw)
        assert KAFKA_PASSWORD not in text and ARANGO_PASSWORD not in text
        meta = raw["metadata"]
        assert meta["name"] == step.job_name == spec.name
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", meta["name"])
        assert len(meta["name"]) <= 63
        assert meta["labels"] == {
            "app.kubernetes.io/managed-by": "queue-manager",
            "streamforge.io/queue-id": queue_id,
            "streamforge.io/step": str(step.index),
            "streamforge.io/target": step.target.value,
        }
        job_spec = raw["spec"]
        assert job_spec["backoffLimit"] == step.max_retries
        assert job_spec["ttlSecondsAfterFinished"] == 600
        assert job_spec["activeDeadlineSeconds"] == 7200
        pod = job_spec["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        assert pod["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] == "streamforge-worker"
        assert pod["nodeSelector"] == {"pool": "loaders", "zone": "a"}
        (container,) = pod["containers"]
        assert container["image"] == config.image_for(step.target.value)
        assert container["resources"] == {
            "requests": {"cpu": "250m", "memory": "128Mi"},
            "limits": {"cpu": "2", "memory": "2Gi"},
        }
        env = {e["name"]: e for e in container["env"]}
        assert set(env) >= WORKER_PROTOCOL_ENV
        literal = {name: e["value"] for name, e in env.items() if "value" in e}
        assert literal["QUEUE_ID"] == queue_id
        assert literal["SYMBOL"] == "BTCUSDT"
        assert literal["TYPE"] == step.type
        assert literal["TELEMETRY_PRODUCER_ID"] == step.telemetry_id
        assert literal["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert literal["TELEMETRY_TOPIC"] == literal["QUEUE_EVENTS_TOPIC"] == "queue-events"
        for name, (secret, key) in SECRET_ENV.items():
            assert "value" not in env[name]
            assert env[name]["valueFrom"] == {"secretKeyRef": {"name": secret, "key": key}}
        # The CA_PATH a job gets is the file its pod mounts from the named Secret.
        assert literal["CA_PATH"] == f"{CA_MOUNT}/ca.crt"
        assert container["volumeMounts"] == [
            {"name": "kafka-ca", "mountPath": CA_MOUNT, "readOnly": True}
        ]
        assert pod["volumes"] == [
            {
                "name": "kafka-ca",
                "secret": {
                    "secretName": "kafka-ca",
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    "defaultMode": 420,  # the API server's default
                },
            }
        ]


@pytest.mark.parametrize(
    ("source", "volume"),
    [
        (
            {"k8s_ca_secret": "kafka-ca"},
            {"secret": {"secretName": "kafka-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        ),
        (
            {"k8s_ca_configmap": "platform-ca", "k8s_ca_key": "root.pem",
             "k8s_ca_mount_path": "/etc/kafka/ca/"},
            {"configMap": {"name": "platform-ca",
                           "items": [{"key": "root.pem", "path": "root.pem"}]}},
        ),
    ],
)  # fmt: skip
def test_every_job_manifest_mounts_the_ca_and_references_each_credential(
    source: dict[str, str], volume: dict[str, Any]
) -> None:
    config = settings(**source)
    template = template_from_settings(config)
    queue = historical_queue(str(uuid.uuid4()))
    for spec in specs_for(queue, config):
        job = build_job(spec, template, "streamforge").to_dict()
        text = json.dumps(job)
        assert KAFKA_PASSWORD not in text and ARANGO_PASSWORD not in text
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert set(env) >= WORKER_PROTOCOL_ENV | set(SECRET_ENV)
        for name, (secret, key) in SECRET_ENV.items():
            assert env[name] == {
                "name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}},
            }  # fmt: skip
        assert env["TELEMETRY_TOPIC"]["value"] == env["QUEUE_EVENTS_TOPIC"]["value"]
        (mount,) = container["volumeMounts"]
        assert mount == {"name": "kafka-ca", "mountPath": mount["mountPath"], "readOnly": True}
        key = volume[next(iter(volume))]["items"][0]["path"]
        assert env["CA_PATH"]["value"] == f"{mount['mountPath']}/{key}" == config.k8s_ca_path
        assert pod["volumes"] == [{"name": "kafka-ca", **volume}]


def test_without_a_ca_volume_jobs_get_the_services_ca_path() -> None:
    # The image must then carry the CA there (docs/operations.md).
    config = settings(ca_path="/etc/ssl/platform-ca.pem")
    queue = historical_queue(str(uuid.uuid4()))
    for spec in specs_for(queue, config):
        job = build_job(spec, template_from_settings(config)).to_dict()
        pod = job["spec"]["template"]["spec"]
        assert "volumes" not in pod and "volumeMounts" not in pod["containers"][0]
        assert spec.env["CA_PATH"] == "/etc/ssl/platform-ca.pem"
    # PLAINTEXT Kafka: no CA at all.
    plain = settings(kafka_user=None, kafka_password=None, ca_path="/etc/ssl/platform-ca.pem")
    assert all("CA_PATH" not in spec.env for spec in specs_for(queue, plain))


def test_a_ca_secret_and_a_ca_configmap_together_are_one_clear_error_line(tmp_path: Path) -> None:
    env = {"K8S_CA_SECRET": "kafka-ca", "K8S_CA_CONFIGMAP": "kafka-ca", "DATA_DIR": str(tmp_path)}
    done = run_cli("serve", env={**env, "PORT": str(free_port())}, cwd=tmp_path, timeout=30)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("cannot start: K8S_CA_CONFIGMAP: ")
    assert "K8S_CA_SECRET and K8S_CA_CONFIGMAP are both set" in line
    assert "Traceback" not in done.stderr + done.stdout


async def test_launching_twice_makes_one_job(
    launcher: KubeLauncher, admin: AsyncClient, kube_namespace: str
) -> None:
    spec = simple_spec("qm-twice000-0-loader-producer")
    await launcher.launch(spec)
    await launcher.launch(spec)  # 409 AlreadyExists is a success
    await asyncio.gather(*(launcher.launch(spec) for _ in range(5)))
    jobs = [j async for j in admin.list(Job, namespace=kube_namespace)]
    assert [j.metadata.name for j in jobs if j.metadata] == [spec.name]
    assert [s.name for s in await launcher.list_jobs()] == [spec.name]


async def test_refused_manifest_is_launch_failed(launcher: KubeLauncher) -> None:
    spec = simple_spec("Not_A_Valid_Name")  # 422 from the API server
    with pytest.raises(LaunchFailed) as info:
        await launcher.launch(spec)
    assert "422" in info.value.message and "Not_A_Valid_Name" in info.value.message


async def test_delete_removes_the_job_at_once_and_a_missing_job_is_fine(
    kube_apiserver: KubeAPIServer, launcher: KubeLauncher, kube_namespace: str
) -> None:
    spec = simple_spec("qm-delete00-0-loader-producer")
    await launcher.launch(spec)
    await launcher.delete(spec.name)
    # No garbage collector runs here: with the Jobs API's default (orphan) or Foreground the Job
    # would stay, held by a finalizer. Gone at once means propagationPolicy=Background.
    with pytest.raises(KubeRequestError) as info:
        await asyncio.to_thread(stored_job, kube_apiserver, kube_namespace, spec.name)
    assert info.value.status == 404
    await launcher.delete(spec.name)  # 404 is a success
    assert await launcher.list_jobs() == []


async def test_in_cluster_config_uses_the_pod_service_account(
    kube_apiserver: KubeAPIServer,
    kube_namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the kubelet mounts into a Pod, and the variables it sets.
    account = tmp_path / "serviceaccount"
    account.mkdir()
    token = await asyncio.to_thread(kube_apiserver.service_account_token, kube_namespace, "qm")
    await asyncio.to_thread(
        kube_apiserver.request, "POST",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{kube_namespace}/rolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "qm"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},  # in this namespace only
            "subjects": [{"kind": "ServiceAccount", "name": "qm", "namespace": kube_namespace}],
        },
    )  # fmt: skip
    (account / "token").write_text(token)
    (account / "namespace").write_text(kube_namespace)
    (account / "ca.crt").write_bytes(kube_apiserver.ca_path.read_bytes())
    host, port = kube_apiserver.url.removeprefix("https://").rsplit(":", 1)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.delenv("KUBECONFIG", raising=False)

    launcher = KubeLauncher(kube_namespace, service_account_dir=account, qps=0)
    await launcher.start()
    try:
        await launcher.ping()
        await launcher.launch(simple_spec("qm-incluste-0-loader-producer"))
        assert [j.name for j in await launcher.list_jobs()] == ["qm-incluste-0-loader-producer"]
    finally:
        await launcher.stop()


async def test_unreachable_api_server_is_dependency_unavailable(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "nowhere.kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1", "kind": "Config", "current-context": "c",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )  # fmt: skip
    launcher = KubeLauncher("default", kubeconfig=kubeconfig, in_cluster=False)
    with pytest.raises(DependencyUnavailable):
        await launcher.ping()  # not started
    await launcher.start()
    try:
        for call in (
            launcher.ping(),
            launcher.launch(simple_spec("qm-nowhere0-0-loader-producer")),
            launcher.delete("qm-nowhere0-0-loader-producer"),
            launcher.list_jobs(),
        ):
            with pytest.raises(DependencyUnavailable) as info:
                await call
            assert info.value.dependency == "launcher"
    finally:
        await launcher.stop()


async def test_an_unexpected_error_surfaces_instead_of_launcher_unavailable(
    launcher: KubeLauncher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A programming error must reach the supervisor's log with its traceback, not be retried
    # forever as "launcher unavailable".
    def broken(*_: object, **__: object) -> Any:
        raise RuntimeError("a bug, not an outage")

    monkeypatch.setattr(launcher.client, "create", broken)
    monkeypatch.setattr(launcher.client, "list", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        await launcher.launch(simple_spec("qm-bug00000-0-loader-producer"))
    with pytest.raises(RuntimeError, match="a bug"):
        await launcher.list_jobs()
    watch = launcher.watch()
    with pytest.raises(RuntimeError, match="a bug"):
        await asyncio.wait_for(anext(watch), 10)


# -- status ---------------------------------------------------------------------------------------


async def test_list_jobs_reports_failed_complete_and_active(
    launcher: KubeLauncher, admin: AsyncClient, kube_namespace: str
) -> None:
    await launcher.launch(simple_spec("qm-list0000-0-loader-producer", "q-list", 0, retries=3))
    await launcher.launch(simple_spec("qm-list0000-1-loader-producer", "q-list", 1))
    await launcher.launch(simple_spec("qm-list0000-2-loader-producer", "q-list", 2, retries=3))
    await set_status(
        admin, kube_namespace, "qm-list0000-0-loader-producer",
        failed_job_status(message="pod failed 4 times", failed=4),
    )  # fmt: skip
    await set_status(admin, kube_namespace, "qm-list0000-1-loader-producer", succeeded_job_status())
    await set_status(admin, kube_namespace, "qm-list0000-2-loader-producer", running_job_status())
    await set_status(
        admin, kube_namespace, "qm-list0000-2-loader-producer",
        {**running_job_status(
            start_time=await start_time(admin, kube_namespace, "qm-list0000-2-loader-producer")
        ), "failed": 1},
    )  # fmt: skip

    jobs = {j.name: j for j in await launcher.list_jobs()}
    failed = jobs["qm-list0000-0-loader-producer"]
    assert (failed.phase, failed.queue_id, failed.step_index) == (JobPhase.FAILED, "q-list", 0)
    assert failed.attempts == 4  # failed + 1, capped at backoffLimit + 1
    assert failed.message is not None and "pod failed 4 times" in failed.message
    assert jobs["qm-list0000-1-loader-producer"].phase is JobPhase.SUCCEEDED
    active = jobs["qm-list0000-2-loader-producer"]
    assert (active.phase, active.attempts, active.step_index) == (JobPhase.ACTIVE, 2, 2)


async def test_watch_reports_creation_failure_completion_and_deletion(
    launcher: KubeLauncher, admin: AsyncClient, kube_namespace: str
) -> None:
    async with Watcher(launcher) as watcher:
        await launcher.launch(simple_spec("qm-watch000-0-loader-producer", "q-w", 0))
        await launcher.launch(simple_spec("qm-watch000-1-loader-producer", "q-w", 1))
        active = await watcher.wait_for("qm-watch000-0-loader-producer", JobPhase.ACTIVE)
        assert (active.queue_id, active.step_index) == ("q-w", 0)

        await set_status(
            admin, kube_namespace, "qm-watch000-0-loader-producer",
            failed_job_status(message="image pull failed"),
        )  # fmt: skip
        failed = await watcher.wait_for("qm-watch000-0-loader-producer", JobPhase.FAILED)
        assert failed.message is not None and "image pull failed" in failed.message

        await set_status(
            admin, kube_namespace, "qm-watch000-1-loader-producer", succeeded_job_status()
        )
        done = await watcher.wait_for("qm-watch000-1-loader-producer", JobPhase.SUCCEEDED)
        assert done.step_index == 1

        await launcher.delete("qm-watch000-1-loader-producer")
        gone = await watcher.wait_for("qm-watch000-1-loader-producer", JobPhase.GONE)
        assert (gone.queue_id, gone.step_index) == ("q-w", 1)
        # A status is reported once per change, not once per event.
        phases = [(s.name, s.phase) for s in watcher.seen]
        assert len(phases) == len(set(phases))


async def test_watch_survives_watches_that_end_and_go_silent(
    kube_apiserver: KubeAPIServer, admin: AsyncClient, kube_namespace: str
) -> None:
    # The server ends each watch after 1 s (lightkube reconnects from the last version), and
    # 1.5 s without an event counts as a silent watch: the launcher re-lists and resumes.
    launcher = make_launcher(kube_apiserver, kube_namespace, watch_timeout=1, watch_silence=1.5)
    await launcher.start()
    lists = 0
    real_list = launcher._list

    async def counting_list() -> Any:
        nonlocal lists
        lists += 1
        return await real_list()

    launcher._list = counting_list  # type: ignore[method-assign]
    try:
        async with Watcher(launcher) as watcher:
            await launcher.launch(simple_spec("qm-silent00-0-loader-producer", "q-s", 0))
            await watcher.wait_for("qm-silent00-0-loader-producer", JobPhase.ACTIVE)
            await wait_until_async(lambda: lists >= 3, 10, what="two re-lists of a silent watch")
            await set_status(
                admin, kube_namespace, "qm-silent00-0-loader-producer", succeeded_job_status()
            )
            await watcher.wait_for("qm-silent00-0-loader-producer", JobPhase.SUCCEEDED)
            # Deleted behind the launcher's back while it re-lists: still reported as GONE.
            await admin.delete(
                Job, "qm-silent00-0-loader-producer", namespace=kube_namespace,
                cascade=CascadeType.BACKGROUND,
            )  # fmt: skip
            await watcher.wait_for("qm-silent00-0-loader-producer", JobPhase.GONE)
    finally:
        await launcher.stop()


# -- 410 Gone -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compacting_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPIServer]:
    """An API server without a watch cache for Jobs, so a watch from a resourceVersion that
    etcd compacted away gets a real 410 Gone (the shared one's cache would still serve it)."""
    server = start_kube_apiserver(
        tmp_path_factory.mktemp("kube-compacting"),
        ensure_binaries(),
        extra_args=["--watch-cache-sizes=jobs.batch#0", "--etcd-compaction-interval=0"],
    )
    try:
        yield server
    finally:
        server.stop()


def compact_etcd(server: KubeAPIServer) -> int:
    def post(path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            server.etcd_url + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    head = post("/v3/kv/range", {"key": base64.b64encode(b"/").decode(), "limit": 1})
    revision = int(head["header"]["revision"])
    post("/v3/kv/compaction", {"revision": revision, "physical": True})
    return revision


async def test_watch_recovers_from_410_gone(compacting_apiserver: KubeAPIServer) -> None:
    server = compacting_apiserver
    namespace, elsewhere = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    for ns in (namespace, elsewhere):
        await asyncio.to_thread(
            server.request, "POST", "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        )  # fmt: skip
    launcher = make_launcher(server, namespace, watch_timeout=1, watch_silence=60)
    other = make_launcher(server, elsewhere)
    await launcher.start()
    await other.start()
    lists = 0
    real_list = launcher._list

    async def counting_list() -> Any:
        nonlocal lists
        lists += 1
        return await real_list()

    launcher._list = counting_list  # type: ignore[method-assign]
    admin = AsyncClient(KubeConfig.from_file(server.kubeconfig_path))
    try:
        async with Watcher(launcher) as watcher:
            await launcher.launch(simple_spec("qm-gone0000-0-loader-producer", "q-g", 0))
            await watcher.wait_for("qm-gone0000-0-loader-producer", JobPhase.ACTIVE)
            assert lists == 1
            # Writes the watch does not see, then compaction past its last version: when the
            # server ends the watch (1 s), the reconnection from that version answers 410.
            for i in range(3):
                await other.launch(simple_spec(f"qm-else0000-{i}-loader-producer", "q-e", i))
            await asyncio.to_thread(compact_etcd, server)
            await wait_until_async(lambda: lists >= 2, 10, what="a re-list after the 410")
            await set_status(admin, namespace, "qm-gone0000-0-loader-producer", failed_job_status())
            await watcher.wait_for("qm-gone0000-0-loader-producer", JobPhase.FAILED)
            assert not any(s.queue_id == "q-e" for s in watcher.seen)
    finally:
        await admin.close()
        await other.stop()
        await launcher.stop()


# -- rate limit -----------------------------------------------------------------------------------


class MetricsSampler:
    """Polls the API server's own request counter: (read started, read ended, value)."""

    def __init__(self, server: KubeAPIServer) -> None:
        self.server = server
        self.samples: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            value = apiserver_requests(self.server, "POST")
            self.samples.append((started, time.monotonic(), value))
            self._stop.wait(0.1)

    def __enter__(self) -> MetricsSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize(("count", "qps", "burst"), [(200, 50.0, 10), (1000, 80.0, 40)])
async def test_a_burst_of_creates_stays_under_the_configured_qps(
    kube_apiserver: KubeAPIServer, kube_namespace: str, count: int, qps: float, burst: int
) -> None:
    launcher = make_launcher(kube_apiserver, kube_namespace, qps=qps, burst=burst)
    await launcher.start()
    # When each request got its token, and how long the API server took to answer it.
    granted: dict[asyncio.Task[Any] | None, float] = {}
    sends: list[float] = []
    latencies: list[float] = []
    acquire = launcher.bucket.acquire

    async def recording_acquire() -> None:
        await acquire()
        now = time.monotonic()
        sends.append(now)
        granted[asyncio.current_task()] = now

    async def launch(spec: Any) -> None:
        await launcher.launch(spec)
        latencies.append(time.monotonic() - granted[asyncio.current_task()])

    launcher.bucket.acquire = recording_acquire  # type: ignore[method-assign]
    try:
        specs = [simple_spec(f"qm-burst000-{i}-loader-producer", "q-b", i) for i in range(count)]
        with MetricsSampler(kube_apiserver) as sampler:
            # A reading before the first request and one begun after the last one was answered.
            await wait_until_async(lambda: sampler.samples, 10, what="a first request-count sample")
            started = time.monotonic()
            await asyncio.gather(*(launch(spec) for spec in specs))
            finished = time.monotonic()
            elapsed = finished - started
            await wait_until_async(
                lambda: sampler.samples[-1][0] > finished,
                10,
                what="a request-count sample begun after the last create",
            )
        assert len(sends) == count
        assert elapsed >= (count - burst) / qps * 0.95, elapsed
        # Client side, exactly: any n consecutive requests span at least (n - burst) / qps.
        for i in range(len(sends)):
            for j in range(i + burst, len(sends)):
                assert sends[j] - sends[i] >= (j - i + 1 - burst) / qps - 1e-3, (i, j)
        # API server side: between two readings of its counter, at most burst + qps * (the
        # longest time the readings could span) POSTs arrived. The counter moves when a request
        # completes, so a stall of the server can bunch completions: allow the slowest
        # request's latency as seen by the client, and one request in flight.
        slowest = max(latencies)
        samples = sampler.samples
        assert samples[-1][2] - samples[0][2] == count
        worst = 0.0
        for i, (start_i, _, value_i) in enumerate(samples):
            for _, end_j, value_j in samples[i + 1 :]:
                allowed = burst + qps * (end_j - start_i + slowest) + 1
                worst = max(worst, (value_j - value_i) / allowed)
        assert worst <= 1.0, f"{worst:.2f} of the allowed rate (slowest request {slowest:.2f} s)"
        # None lost.
        assert len(await launcher.list_jobs()) == count
    finally:
        await launcher.stop()


async def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    # The bucket's own clock, moved by hand: no assertion depends on how busy the machine is.
    now = [0.0]
    reads = [0]

    def clock() -> float:
        reads[0] += 1
        return now[0]

    bucket = TokenBucket(100, 5, clock=clock)
    for _ in range(5):
        await asyncio.wait_for(bucket.acquire(), 5)  # the burst, with no time passing

    async def blocked(task: asyncio.Task[None]) -> bool:
        """Whether `task` still waits once it has looked at the clock, as it reads now, twice
        more: it found too few tokens, waited, and found too few again."""
        seen = reads[0]
        await wait_until_async(
            lambda: task.done() or reads[0] >= seen + 2,
            5,
            what="the waiting acquire to look at the clock twice more",
        )
        return not task.done()

    sixth = asyncio.create_task(bucket.acquire())
    assert await blocked(sixth)
    now[0] += 0.005  # half a token at 100 per second
    assert await blocked(sixth)
    now[0] += 0.005
    await asyncio.wait_for(sixth, 5)
    seventh = asyncio.create_task(bucket.acquire())
    assert await blocked(seventh)
    now[0] += 0.01
    await asyncio.wait_for(seventh, 5)

    unlimited = TokenBucket(0, 1, clock=lambda: 0.0)
    for _ in range(1000):
        await unlimited.acquire()


async def _read_logs(launcher: KubeLauncher, name: str) -> bytes:
    return b"".join([c async for c in launcher.logs(name, tail=10, follow=False)])


async def test_step_logs_say_clearly_when_no_pod_can_serve_them(
    launcher: KubeLauncher, admin: AsyncClient, kube_namespace: str
) -> None:
    """The suite's API server has no kubelet: a Job without a pod, and a pod no node runs, are
    each answered with the reason instead of an error page (docs/api.md)."""
    spec = simple_spec("qm-logs0000-0-loader-producer")
    await launcher.launch(spec)
    with pytest.raises(LogsUnavailable, match="has no pod: not scheduled yet"):
        await _read_logs(launcher, spec.name)
    pod = Pod(
        metadata=ObjectMeta(name=f"{spec.name}-x1", labels={"job-name": spec.name}),
        spec=PodSpec(containers=[Container(name="worker", image="streamforge/loader:1")]),
    )
    await admin.create(pod, namespace=kube_namespace)
    with pytest.raises(LogsUnavailable, match=f"pod {spec.name}-x1 of job {spec.name} has no log"):
        await _read_logs(launcher, spec.name)
