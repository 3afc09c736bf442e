"""What a Job's pods say that the Job's own status does not (docs/operations.md "Error classes"):
an image that cannot be pulled or a container that cannot be configured (the Job never fails by
itself: its pod waits forever), a pod the scheduler cannot place, and why a pod was lost
(OOMKilled, Evicted, node lost).

Pure functions over lightkube models: the launcher lists the pods, these read them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from lightkube.models.core_v1 import ContainerStatus
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod

from queue_manager.domain.retry import ErrorClass
from queue_manager.ports import JobPhase, JobStatus

#: container waiting reasons of an image that will not be pulled as asked
IMAGE_WAITING = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
#: container waiting reasons of a container that cannot be created as configured (a missing
#: Secret or key, a bad command)
CONFIG_WAITING = frozenset({"CreateContainerConfigError", "CreateContainerError"})
#: pod reasons, container reasons and pod conditions of a worker the platform lost
LOST_POD_REASONS = frozenset(
    {"Evicted", "NodeLost", "Shutdown", "Terminated", "UnexpectedAdmissionError"}
)
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")

#: how strongly a word about a job counts when its pods disagree
_RANK = {ErrorClass.CONFIGURATION: 3, ErrorClass.INFRASTRUCTURE: 2, ErrorClass.PENDING: 1}


@dataclass(frozen=True)
class PodWord:
    error_class: ErrorClass
    message: str


def job_of(pod: Pod) -> str | None:
    """The name of the Job that owns `pod`: its owner reference, else the Job controller's
    label."""
    meta = pod.metadata
    if meta is None:
        return None
    for owner in meta.ownerReferences or []:
        if owner.kind == "Job":
            return str(owner.name)
    labels = meta.labels or {}
    for label in JOB_NAME_LABELS:
        if labels.get(label):
            return str(labels[label])
    return None


def _containers(pod: Pod) -> list[ContainerStatus]:
    status = pod.status
    if status is None:
        return []
    return [*(status.initContainerStatuses or []), *(status.containerStatuses or [])]


def _image(pod: Pod, container: ContainerStatus) -> str:
    for spec in pod.spec.containers if pod.spec is not None else []:
        if spec.name == container.name and spec.image:
            return spec.image
    return container.image


def pod_word(pod: Pod) -> PodWord | None:
    """What the pod says of its job, if anything beyond "running" or "done"."""
    status = pod.status
    if status is None:
        return None
    for container in _containers(pod):
        waiting = container.state.waiting if container.state is not None else None
        if waiting is None or not waiting.reason:
            continue
        detail = f" ({waiting.reason}: {waiting.message})" if waiting.message else ""
        if waiting.reason in IMAGE_WAITING:
            return PodWord(
                ErrorClass.CONFIGURATION,
                f"image pull failed: {_image(pod, container)}{detail or f' ({waiting.reason})'}",
            )
        if waiting.reason in CONFIG_WAITING:
            return PodWord(
                ErrorClass.CONFIGURATION,
                f"container {container.name} cannot be created{detail}",
            )
    for container in _containers(pod):
        for state in (container.state, container.lastState):
            terminated = state.terminated if state is not None else None
            if terminated is not None and terminated.reason == "OOMKilled":
                return PodWord(
                    ErrorClass.INFRASTRUCTURE,
                    f"OOMKilled: container {container.name} ran out of memory",
                )
    if status.reason in LOST_POD_REASONS:
        why = f": {status.message}" if status.message else ""
        return PodWord(ErrorClass.INFRASTRUCTURE, f"pod {status.reason.lower()}{why}")
    for condition in status.conditions or []:
        if condition.type == "DisruptionTarget" and condition.status == "True":
            why = f": {condition.message}" if condition.message else ""
            return PodWord(
                ErrorClass.INFRASTRUCTURE, f"pod disrupted ({condition.reason or 'node lost'}){why}"
            )
    if status.phase == "Pending":
        for condition in status.conditions or []:
            if (
                condition.type == "PodScheduled"
                and condition.status == "False"
                and condition.reason == "Unschedulable"
            ):
                return PodWord(
                    ErrorClass.PENDING, f"unschedulable: {condition.message or 'no node fits'}"
                )
    return None


def words_by_job(pods: Iterable[Pod]) -> dict[str, PodWord]:
    """The strongest word of each job's pods."""
    words: dict[str, PodWord] = {}
    for pod in pods:
        name = job_of(pod)
        word = pod_word(pod) if name else None
        if name is None or word is None:
            continue
        held = words.get(name)
        if held is None or _RANK[word.error_class] > _RANK[held.error_class]:
            words[name] = word
    return words


def with_pods(status: JobStatus, word: PodWord | None) -> JobStatus:
    """A job's status told with what its pods say: an ACTIVE job whose pod can never run
    (configuration) is FAILED; one whose pod cannot be placed stays ACTIVE, classed `pending`
    with the scheduler's reason; a FAILED one is classed by how its pod was lost."""
    if word is None or status.error_class is not None:
        return status
    if status.phase is JobPhase.ACTIVE and word.error_class is ErrorClass.CONFIGURATION:
        return dataclasses.replace(
            status,
            phase=JobPhase.FAILED,
            error_class=word.error_class.value,
            message=word.message,
        )
    if status.phase is JobPhase.ACTIVE and word.error_class is ErrorClass.PENDING:
        return dataclasses.replace(status, error_class=word.error_class.value, message=word.message)
    if status.phase is JobPhase.FAILED and word.error_class is ErrorClass.INFRASTRUCTURE:
        message = f"{status.message}: {word.message}" if status.message else word.message
        return dataclasses.replace(status, error_class=word.error_class.value, message=message)
    return status


def deadline_exceeded(job: Job) -> str | None:
    """The message of a Job ended by its `activeDeadlineSeconds` (the step's `timeout`)."""
    status = job.status
    for condition in (status.conditions or []) if status is not None else []:
        if condition.type == "Failed" and condition.status == "True":
            if condition.reason != "DeadlineExceeded":
                return None
            limit = job.spec.activeDeadlineSeconds if job.spec is not None else None
            after = f" of {limit} s" if limit is not None else ""
            return f"timed out: ran longer than its timeout{after} (DeadlineExceeded)"
    return None
