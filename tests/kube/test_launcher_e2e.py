"""The real service with LAUNCHER_BACKEND=kubernetes against the real kube-apiserver
(docs/operations.md),
authenticated as a ServiceAccount bound only to the chart's Role.

Nothing runs Jobs here: the test plays the workers (telemetry over the embedded HTTP protocol,
since there is no Kafka) and the Job controller (status through the /status subresource).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import codecs

from queue_manager.api.worker_auth import WorkerTokens
from queue_manager.domain.models import Target
from queue_manager.domain.naming import telemetry_id
from tests.kube.test_launcher_helpers import (
    ARANGO_PASSWORD,
    HISTORICAL,
    KAFKA_PASSWORD,
    apiserver_requests,
    render_chart,
)
from tests.support.kube_apiserver import (
    KubeAPIServer,
    failed_job_status,
    succeeded_job_status,
)
from tests.support.service import Service, wait_for

pytestmark = pytest.mark.kube

RELEASE = "qm"
TOKEN_SECRET = "e2e-worker-token-secret"


def install_chart_rbac(server: KubeAPIServer, namespace: str) -> None:
    rendered = render_chart(RELEASE, namespace)
    paths = {
        "serviceaccount.yaml": f"/api/v1/namespaces/{namespace}/serviceaccounts",
        "role.yaml": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
        "rolebinding.yaml": (
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings"
        ),
    }
    for name, path in paths.items():
        codecs.from_dict(rendered[name])  # a valid object
        server.request("POST", path, rendered[name])


def jobs(server: KubeAPIServer, namespace: str) -> dict[str, dict[str, Any]]:
    """The Jobs as stored by the API server, read back with kubectl when it is installed."""
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        out = subprocess.run(
            [kubectl, "--kubeconfig", str(server.kubeconfig_path), "-n", namespace,
             "get", "jobs", "-o", "json"],
            capture_output=True, text=True, check=True, timeout=20,
        ).stdout  # fmt: skip
        items = json.loads(out)["items"]
    else:
        items = server.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    return {item["metadata"]["name"]: item for item in items}


def set_status(server: KubeAPIServer, namespace: str, name: str, status: dict[str, Any]) -> None:
    server.request(
        "PATCH",
        f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}/status",
        {"status": status},
        content_type="application/merge-patch+json",
    )


@pytest.fixture
def kube_service(
    kube_apiserver: KubeAPIServer, kube_namespace: str, tmp_path: Path
) -> Iterator[Service]:
    install_chart_rbac(kube_apiserver, kube_namespace)
    token = kube_apiserver.service_account_token(kube_namespace, RELEASE, create=False)
    kubeconfig = kube_apiserver.write_kubeconfig(
        tmp_path / "sa.kubeconfig", token, namespace=kube_namespace
    )
    service = Service(
        tmp_path / "svc",
        env={
            "LAUNCHER_BACKEND": "kubernetes",
            "KUBECONFIG": str(kubeconfig),
            "K8S_NAMESPACE": kube_namespace,
            "STORE_BACKEND": "sqlite",
            "BUS_BACKEND": "memory",
            # Credentials the Jobs must only ever reference.
            "KAFKA_USER": "qm",
            "KAFKA_PASSWORD": KAFKA_PASSWORD,
            "ARANGO_URL": "http://arangodb:8529",
            "ARANGO_PASSWORD": ARANGO_PASSWORD,
            "WORKER_TOKEN_SECRET": TOKEN_SECRET,
            "STOP_GRACE_SECONDS": "2",
        },
    ).start()
    try:
        yield service
    finally:
        service.stop()


def telemetry(service: Service, queue_id: str, producer: str, status: str, records: int) -> None:
    token = WorkerTokens(TOKEN_SECRET.encode()).token(producer)  # the step run's own
    answer = service.post(
        "/internal/telemetry",
        json={
            "queue_id": queue_id,
            "producer": producer,
            "status": status,
            "records_written": records,
            "finished": status == "finished",
            "sent_at": "2026-01-01T00:00:00Z",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 202, answer.text


def step_status(service: Service, queue_id: str, index: int) -> str:
    status: str = service.queue(queue_id)["steps"][index]["status"]
    return status


async def test_historical_example_creates_the_planned_jobs_in_order(
    kube_apiserver: KubeAPIServer, kube_namespace: str, kube_service: Service
) -> None:
    await asyncio.to_thread(_historical, kube_apiserver, kube_namespace, kube_service)


def _historical(server: KubeAPIServer, namespace: str, service: Service) -> None:
    queue_id = service.start_queue(json.loads(HISTORICAL.read_text()))
    steps = service.queue(queue_id)["steps"]
    names = [s["job_name"] for s in steps]
    producers = [telemetry_id(queue_id, i, Target(s["target"])) for i, s in enumerate(steps)]

    def present() -> set[str]:
        return set(jobs(server, namespace))

    # Loaders and their connectors at once; nothing else yet.
    wait_for(lambda: present() == set(names[:4]), 20)
    # Loaders report over the worker protocol, and their Jobs complete.
    for i in (0, 1):
        telemetry(service, queue_id, producers[i], "started", 0)
        telemetry(service, queue_id, producers[i], "finished", 1000 + i)
        set_status(server, namespace, names[i], succeeded_job_status())
    # Connectors: the Job's Complete alone finishes the step (their telemetry would be on Kafka).
    set_status(server, namespace, names[2], succeeded_job_status())
    wait_for(lambda: step_status(service, queue_id, 2) == "finished", 20)
    # Each reconcile pass starts with a LIST of the Jobs: three more LISTs mean two whole
    # passes since, and graph-builder still waits for step 3. (Nothing else LISTs meanwhile.)
    lists = apiserver_requests(server, "LIST")
    wait_for(lambda: apiserver_requests(server, "LIST") >= lists + 3, 20)
    assert present() == set(names[:4])
    set_status(server, namespace, names[3], succeeded_job_status())
    wait_for(lambda: present() == set(names[:5]), 20)
    set_status(server, namespace, names[4], succeeded_job_status())
    wait_for(lambda: present() == set(names), 20)
    set_status(server, namespace, names[5], succeeded_job_status())
    queue = service.wait_status(queue_id, {"finished", "error", "stopped"}, 20)
    assert queue["status"] == "finished", queue
    assert [s["status"] for s in queue["steps"]] == ["finished"] * 6
    assert queue["steps"][0]["records_written"] == 1000

    stored = jobs(server, namespace)
    text = json.dumps(stored)
    assert KAFKA_PASSWORD not in text and ARANGO_PASSWORD not in text
    for index, name in enumerate(names):
        job = stored[name]
        assert job["metadata"]["labels"]["streamforge.io/queue-id"] == queue_id
        assert job["metadata"]["labels"]["streamforge.io/step"] == str(index)
        (container,) = job["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["QUEUE_ID"]["value"] == queue_id
        assert env["TELEMETRY_PRODUCER_ID"]["value"] == producers[index]
        assert env["KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "kafka-credentials"
        assert env["ARANGO_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "arango-credentials"


async def test_failed_job_fails_the_queue_and_stop_deletes_the_jobs(
    kube_apiserver: KubeAPIServer, kube_namespace: str, kube_service: Service
) -> None:
    await asyncio.to_thread(_fail_and_stop, kube_apiserver, kube_namespace, kube_service)


def _fail_and_stop(server: KubeAPIServer, namespace: str, service: Service) -> None:
    body = json.loads(HISTORICAL.read_text())
    # A Job marked Failed fails its step; fail-fast deletes the queue's other Jobs.
    failing = service.start_queue(body)
    names = [s["job_name"] for s in service.queue(failing)["steps"]]
    wait_for(lambda: set(names[:4]) <= set(jobs(server, namespace)), 20)
    set_status(server, namespace, names[0], failed_job_status(message="pod crashed"))
    queue = service.wait_status(failing, {"error"}, 20)
    assert "pod crashed" in (queue["steps"][0].get("error_message") or "")
    # The failed Job stays for inspection (its TTL removes it); the others are deleted.
    wait_for(lambda: set(names) & set(jobs(server, namespace)) == {names[0]}, 20)

    # Stop deletes every Job of the queue after the grace period; every step ends stopped.
    # the same pipeline for ETHUSDT: the graph-builder reads the eth_ collections it makes
    eth = json.loads(HISTORICAL.read_text().replace('"btc_', '"eth_'))
    stopping = service.start_queue({**eth, "symbol": "ETHUSDT"})
    names = [s["job_name"] for s in service.queue(stopping)["steps"]]
    wait_for(lambda: set(names[:4]) <= set(jobs(server, namespace)), 20)
    assert service.post(f"/queues/stop?queue_id={stopping}").status_code == 200
    queue = service.wait_status(stopping, {"stopped"}, 20)
    assert {s["status"] for s in queue["steps"]} == {"stopped"}
    wait_for(lambda: not set(names) & set(jobs(server, namespace)), 20)


async def test_vanished_and_unknown_jobs_are_reconciled(
    kube_apiserver: KubeAPIServer, kube_namespace: str, kube_service: Service
) -> None:
    await asyncio.to_thread(_vanished_and_unknown, kube_apiserver, kube_namespace, kube_service)


def _vanished_and_unknown(server: KubeAPIServer, namespace: str, service: Service) -> None:
    queue_id = service.start_queue(json.loads(HISTORICAL.read_text()))
    names = [s["job_name"] for s in service.queue(queue_id)["steps"]]
    wait_for(lambda: set(names[:4]) <= set(jobs(server, namespace)), 20)

    # A Job deleted behind the service's back fails its step (watch, else one reconcile).
    server.request(
        "DELETE",
        f"/apis/batch/v1/namespaces/{namespace}/jobs/{names[1]}?propagationPolicy=Background",
    )
    queue = service.wait_status(queue_id, {"error"}, 10)
    assert queue["steps"][1]["status"] == "error"

    # A Job labelled as ours that no queue knows is deleted.
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "qm-deadbeef-0-loader-producer",
            "labels": {
                "app.kubernetes.io/managed-by": "queue-manager",
                "streamforge.io/queue-id": "deadbeef-0000-4000-8000-000000000000",
                "streamforge.io/step": "0",
            },
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "worker", "image": "example.invalid/w:1"}],
                }
            },
        },
    }
    server.request("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", manifest)
    wait_for(lambda: "qm-deadbeef-0-loader-producer" not in jobs(server, namespace), 10)


async def test_restart_with_20_running_queues_matches_the_cluster(
    kube_apiserver: KubeAPIServer, kube_namespace: str, kube_service: Service
) -> None:
    await asyncio.to_thread(_restart, kube_apiserver, kube_namespace, kube_service)


def _restart(server: KubeAPIServer, namespace: str, service: Service) -> None:
    body = json.loads(HISTORICAL.read_text())
    queues = [service.start_queue(body) for _ in range(20)]
    names = {q: [s["job_name"] for s in service.queue(q)["steps"]] for q in queues}
    expected = {n for q in queues for n in names[q][:4]}
    wait_for(lambda: expected <= set(jobs(server, namespace)), 30)
    done, failed, vanished, untouched = queues[:5], queues[5:10], queues[10:15], queues[15:]
    for q in vanished:
        # A step that reported `started`: its Job vanishing means failure. (A step still
        # `launching` whose Job is missing is launched again by the reconciler instead.)
        telemetry(service, q, telemetry_id(q, 2, Target.CONNECTOR), "started", 0)
        wait_for(lambda q=q: step_status(service, q, 2) == "started", 10)

    service.stop()
    for q in done:  # loaders and connectors completed while the service was down
        for name in names[q][:4]:
            set_status(server, namespace, name, succeeded_job_status())
    for q in failed:
        set_status(server, namespace, names[q][0], failed_job_status(message="OOMKilled"))
    for q in vanished:
        server.request(
            "DELETE",
            f"/apis/batch/v1/namespaces/{namespace}/jobs/{names[q][2]}"
            "?propagationPolicy=Background",
        )
    service.start()

    for q in done:  # the pending graph-builder launches
        wait_for(lambda q=q: names[q][4] in jobs(server, namespace), 30)
        assert service.queue(q)["steps"][4]["status"] not in ("pending",)
    for q in failed:
        queue = service.wait_status(q, {"error"}, 20)
        assert "OOMKilled" in (queue["steps"][0].get("error_message") or "")
    for q in vanished:
        queue = service.wait_status(q, {"error"}, 20)
        assert queue["steps"][2]["status"] == "error"

    def settled() -> bool:
        present = set(jobs(server, namespace))
        # fail-fast: only the failed Job stays
        return all(not set(names[q][1:]) & present for q in failed + vanished)

    wait_for(settled, 20)
    present = set(jobs(server, namespace))
    for q in untouched:
        assert set(names[q][:4]) <= present
        assert names[q][4] not in present
        assert service.queue(q)["status"] not in ("error", "finished", "stopped")


async def test_retry_relaunches_only_the_failed_steps_as_new_jobs(
    kube_apiserver: KubeAPIServer, kube_namespace: str, kube_service: Service
) -> None:
    await asyncio.to_thread(_fail_and_retry, kube_apiserver, kube_namespace, kube_service)


def _fail_and_retry(server: KubeAPIServer, namespace: str, service: Service) -> None:
    """Historical example on Kubernetes: the graph-builder's Job fails; retry keeps the four
    finished loader/connector Jobs and creates `-r1` Jobs for the rest (docs/api.md)."""
    queue_id = service.start_queue(json.loads(HISTORICAL.read_text()))
    names = [s["job_name"] for s in service.queue(queue_id)["steps"]]
    wait_for(lambda: set(names[:4]) <= set(jobs(server, namespace)), 20)
    for name in names[:4]:
        set_status(server, namespace, name, succeeded_job_status())
    wait_for(lambda: names[4] in jobs(server, namespace), 20)
    before = {n: jobs(server, namespace)[n]["metadata"]["uid"] for n in names[:4]}
    set_status(server, namespace, names[4], failed_job_status(message="graph-builder OOMKilled"))
    failed = service.wait_status(queue_id, {"error"}, 20)
    assert [s["status"] for s in failed["steps"][4:]] == ["error", "skipped"]

    answer = service.post(f"/queues/{queue_id}/retry")
    assert answer.status_code == 200, answer.text
    retried = service.queue(queue_id)
    rerun = retried["steps"][4]["job_name"]
    assert rerun == names[4] + "-r1"
    wait_for(lambda: rerun in jobs(server, namespace), 20)
    stored = jobs(server, namespace)
    assert {n: stored[n]["metadata"]["uid"] for n in names[:4]} == before  # not relaunched
    assert [s["attempts"] for s in retried["steps"][:4]] == [1, 1, 1, 1]
    set_status(server, namespace, rerun, succeeded_job_status())
    trainer = names[5] + "-r1"
    wait_for(lambda: trainer in jobs(server, namespace), 20)
    set_status(server, namespace, trainer, succeeded_job_status())
    done = service.wait_status(queue_id, {"finished", "error"}, 20)
    assert done["status"] == "finished", done
