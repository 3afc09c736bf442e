"""docs/operations.md "Timeouts" and "Error classes" on the real kube-apiserver: what a Job's pod
says that the Job does not. There is no kubelet or scheduler here: the test creates the Job's pod
as the Job controller would and writes its status as the kubelet (or the scheduler) would."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.kube.test_launcher_e2e import jobs, kube_service
from tests.support.kube_apiserver import KubeAPIServer, rfc3339
from tests.support.service import Service, wait_for

__all__ = ["kube_service"]  # the fixture, imported to be used here

pytestmark = pytest.mark.kube


def single(**fields: Any) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "type": "api_candles_5m",
        "time_range": "2024-01-01:2024-01-02",
        **fields,
    }


def create_pod(server: KubeAPIServer, namespace: str, job_name: str) -> tuple[str, str]:
    """The Job's pod, as the Job controller creates it (owner reference and labels); its name
    and image."""
    job = server.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{job_name}")
    template = job["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{job_name}-abcde",
            "labels": {**template["metadata"]["labels"], "batch.kubernetes.io/job-name": job_name},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": job_name,
                    "uid": job["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": template["spec"],
    }
    created = server.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)
    name: str = created["metadata"]["name"]
    image: str = template["spec"]["containers"][0]["image"]
    return name, image


def set_pod_status(server: KubeAPIServer, namespace: str, pod: str, status: dict[str, Any]) -> None:
    server.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/pods/{pod}/status",
        {"status": status},
        content_type="application/merge-patch+json",
    )


def image_pull_backoff(image: str) -> dict[str, Any]:
    """What the kubelet writes for a container whose image cannot be pulled."""
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": rfc3339()}],
        "containerStatuses": [
            {
                "name": "worker",
                "image": image,
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": f'Back-off pulling image "{image}"',
                    }
                },
            }
        ],
    }


SCHEDULER_MESSAGE = "0/3 nodes are available: 3 Insufficient cpu."


def unschedulable() -> dict[str, Any]:
    """What the scheduler writes for a pod no node fits."""
    return {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": SCHEDULER_MESSAGE,
                "lastTransitionTime": rfc3339(),
            }
        ],
    }


async def test_an_image_pull_error_fails_the_step_at_once_without_retry(
    kube_apiserver: KubeAPIServer, kube_namespace: str, kube_service: Service
) -> None:
    await asyncio.to_thread(_image_pull, kube_apiserver, kube_namespace, kube_service)


def _image_pull(server: KubeAPIServer, namespace: str, service: Service) -> None:
    # A policy that retries everything it may: configuration is never retried all the same.
    body = single(retry={"limit": 3, "on": ["infrastructure", "transient", "configuration"]})
    answer = service.post("/queues/start", json=body)
    if answer.status_code == 422:
        # `configuration` in `on` may be refused outright (it is never retried): without it.
        body = single(retry={"limit": 3, "on": ["infrastructure", "transient"]})
        answer = service.post("/queues/start", json=body)
    assert answer.status_code in (200, 201, 202), answer.text
    queue_id = answer.json()["data"]["queue_id"]
    job_name = service.queue(queue_id)["steps"][0]["job_name"]
    wait_for(lambda: job_name in jobs(server, namespace), 20)
    pod, image = create_pod(server, namespace, job_name)
    set_pod_status(server, namespace, pod, image_pull_backoff(image))

    queue = service.wait_status(queue_id, {"error", "finished", "stopped"}, 15)
    step = queue["steps"][0]
    assert step["status"] == "error", queue
    assert step["error_message"].startswith(f"image pull failed: {image}"), step
    assert step["error_class"] == "configuration"
    assert step.get("retry_at") is None
    # The Job would wait forever for its image: it is deleted.
    wait_for(lambda: job_name not in jobs(server, namespace), 20)


async def test_a_pod_pending_past_pending_timeout_fails_with_the_schedulers_reason(
    kube_apiserver: KubeAPIServer, kube_namespace: str, kube_service: Service
) -> None:
    await asyncio.to_thread(_pending, kube_apiserver, kube_namespace, kube_service)


def _pending(server: KubeAPIServer, namespace: str, service: Service) -> None:
    queue_id = service.start_queue(single(pending_timeout=2))
    job_name = service.queue(queue_id)["steps"][0]["job_name"]
    wait_for(lambda: job_name in jobs(server, namespace), 20)
    pod, _ = create_pod(server, namespace, job_name)
    set_pod_status(server, namespace, pod, unschedulable())

    queue = service.wait_status(queue_id, {"error", "finished", "stopped"}, 15)
    step = queue["steps"][0]
    assert step["status"] == "error", queue
    assert step["error_class"] == "pending"
    assert f"unschedulable: {SCHEDULER_MESSAGE}" in step["error_message"], step
    assert "within 2 s" in step["error_message"]
    wait_for(lambda: job_name not in jobs(server, namespace), 20)
