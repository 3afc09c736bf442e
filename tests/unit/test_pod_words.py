"""docs/operations.md "Error classes": what a Job's pods say, read from the objects the API server
returns (lightkube models decoded from the JSON a kubelet writes), and the Job's deadline."""

from __future__ import annotations

import dataclasses
from typing import Any

from lightkube import codecs
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod

from queue_manager.adapters.kube.manifests import JobTemplate, build_job, job_status
from queue_manager.adapters.kube.pods import pod_word, with_pods, words_by_job
from queue_manager.domain.retry import ErrorClass
from queue_manager.ports import JobPhase, JobSpec, JobStatus


def pod(status: dict[str, Any], job: str = "qm-job") -> Pod:
    obj = codecs.from_dict(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{job}-x", "labels": {"batch.kubernetes.io/job-name": job}},
            "spec": {"containers": [{"name": "worker", "image": "registry.invalid/w:1"}]},
            "status": status,
        }
    )
    assert isinstance(obj, Pod)
    return obj


def container(state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": "worker",
        "image": "registry.invalid/w:1",
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "state": state,
        **({"lastState": last} if last else {}),
    }


def test_an_image_that_cannot_be_pulled_is_configuration_and_names_the_image() -> None:
    for reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
        word = pod_word(
            pod(
                {
                    "phase": "Pending",
                    "containerStatuses": [container({"waiting": {"reason": reason}})],
                }
            )
        )
        assert word is not None and word.error_class is ErrorClass.CONFIGURATION
        assert word.message.startswith("image pull failed: registry.invalid/w:1"), word


def test_a_container_that_cannot_be_configured_is_configuration() -> None:
    waiting = {"reason": "CreateContainerConfigError", "message": 'secret "kafka" not found'}
    word = pod_word(
        pod({"phase": "Pending", "containerStatuses": [container({"waiting": waiting})]})
    )
    assert word is not None and word.error_class is ErrorClass.CONFIGURATION
    assert 'secret "kafka" not found' in word.message


def test_lost_pods_are_infrastructure() -> None:
    oom = pod(
        {
            "phase": "Failed",
            "containerStatuses": [
                container({"terminated": {"exitCode": 137, "reason": "OOMKilled"}})
            ],
        }
    )
    evicted = pod({"phase": "Failed", "reason": "Evicted", "message": "low on memory"})
    node_lost = pod(
        {
            "phase": "Failed",
            "conditions": [
                {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager"}
            ],
        }
    )
    words = [pod_word(p) for p in (oom, evicted, node_lost)]
    assert [w.error_class if w else None for w in words] == [ErrorClass.INFRASTRUCTURE] * 3
    assert words[0] is not None and words[0].message.startswith("OOMKilled")
    assert words[1] is not None and words[1].message == "pod evicted: low on memory"


def test_an_unschedulable_pod_is_pending_with_the_schedulers_message() -> None:
    message = "0/3 nodes are available: 3 Insufficient cpu."
    word = pod_word(
        pod(
            {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": message,
                    }
                ],
            }
        )
    )
    assert word is not None and word.error_class is ErrorClass.PENDING
    assert word.message == f"unschedulable: {message}"
    assert pod_word(pod({"phase": "Running"})) is None


def test_a_jobs_status_told_with_its_pods() -> None:
    active = JobStatus(name="qm-job", queue_id="q", step_index=0, phase=JobPhase.ACTIVE)
    pull = pod({"containerStatuses": [container({"waiting": {"reason": "ErrImagePull"}})]})
    unplaced = pod(
        {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
        },
        job="other",
    )
    words = words_by_job([pull, unplaced])
    failed = with_pods(active, words["qm-job"])
    assert failed.phase is JobPhase.FAILED and failed.error_class == "configuration"
    waiting = with_pods(dataclasses.replace(active, name="other"), words["other"])
    assert waiting.phase is JobPhase.ACTIVE and waiting.error_class == "pending"
    # A job that failed by itself keeps its own word, its class from the lost pod.
    oom = pod(
        {"containerStatuses": [container({"terminated": {"exitCode": 137, "reason": "OOMKilled"}})]}
    )
    lost = with_pods(
        dataclasses.replace(
            active, phase=JobPhase.FAILED, message="job failed: BackoffLimitExceeded"
        ),
        pod_word(oom),
    )
    assert lost.error_class == "infrastructure"
    assert lost.message is not None and lost.message.startswith(
        "job failed: BackoffLimitExceeded: OOMKilled"
    )


def test_a_steps_timeout_is_the_jobs_deadline_and_its_expiry_is_timeout() -> None:
    spec = JobSpec(
        name="qm-job",
        queue_id="q",
        step_index=0,
        target="loader-producer",
        image="registry.invalid/w:1",
        env={},
        secret_env={},
        max_retries=0,
        timeout=2.5,
    )
    job = build_job(spec, JobTemplate(active_deadline_seconds=600))
    assert job.spec is not None and job.spec.activeDeadlineSeconds == 3
    plain = build_job(
        dataclasses.replace(spec, timeout=None), JobTemplate(active_deadline_seconds=600)
    )
    assert plain.spec is not None and plain.spec.activeDeadlineSeconds == 600

    data = job.to_dict()
    data["status"] = {
        "conditions": [
            {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "x"}
        ]
    }
    ended = codecs.from_dict(data)
    assert isinstance(ended, Job)
    status = job_status(ended)
    assert status is not None and status.phase is JobPhase.FAILED
    assert status.error_class == "timeout"
    assert status.message == "timed out: ran longer than its timeout of 3 s (DeadlineExceeded)"
