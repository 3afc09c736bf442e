"""The Job a step gets, and what a Job read back from the cluster says about its step."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from lightkube.models.batch_v1 import JobSpec as KubeJobSpec
from lightkube.models.core_v1 import (
    ConfigMapVolumeSource,
    Container,
    EnvVar,
    EnvVarSource,
    KeyToPath,
    PodSpec,
    PodTemplateSpec,
    ResourceRequirements,
    SecretKeySelector,
    SecretVolumeSource,
    Volume,
    VolumeMount,
)
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job

from queue_manager.adapters.kube.pods import deadline_exceeded
from queue_manager.domain.errors import LaunchFailed
from queue_manager.domain.retry import ErrorClass
from queue_manager.ports import JobPhase, JobSpec, JobStatus

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "queue-manager"
QUEUE_LABEL = "streamforge.io/queue-id"
STEP_LABEL = "streamforge.io/step"
TARGET_LABEL = "streamforge.io/target"
#: typed as lightkube's label selector (a dict of str to str | operator)
SELECTOR: dict[str, Any] = {MANAGED_BY_LABEL: MANAGED_BY}


#: the name of the Kafka CA's volume in a Job's pod
CA_VOLUME = "kafka-ca"


@dataclass(frozen=True)
class CaVolume:
    """The Kafka CA, mounted read-only into every Job from an existing Secret or ConfigMap: the
    file is `<mount_path>/<key>`, the job's CA_PATH (`Settings.k8s_ca_path`)."""

    kind: Literal["secret", "configmap"]
    name: str
    key: str = "ca.crt"
    mount_path: str = "/etc/streamforge/kafka-ca"


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
    #: None: no CA is mounted (the image carries the one CA_PATH names, if any)
    ca: CaVolume | None = None


def _ca_volume(ca: CaVolume) -> tuple[Volume, VolumeMount]:
    items = [KeyToPath(key=ca.key, path=ca.key)]
    if ca.kind == "secret":
        volume = Volume(name=CA_VOLUME, secret=SecretVolumeSource(secretName=ca.name, items=items))
    else:
        volume = Volume(name=CA_VOLUME, configMap=ConfigMapVolumeSource(name=ca.name, items=items))
    return volume, VolumeMount(name=CA_VOLUME, mountPath=ca.mount_path, readOnly=True)


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
    volumes, mounts = None, None
    if template.ca is not None:
        volume, mount = _ca_volume(template.ca)
        volumes, mounts = [volume], [mount]
    container = Container(
        name="worker",
        image=spec.image,
        env=env,
        resources=resources,
        imagePullPolicy=template.image_pull_policy,
        volumeMounts=mounts,
    )
    return Job(
        metadata=ObjectMeta(name=spec.name, namespace=namespace, labels=labels),
        spec=KubeJobSpec(
            backoffLimit=max(spec.max_retries, 0),
            ttlSecondsAfterFinished=template.ttl_seconds_after_finished,
            activeDeadlineSeconds=active_deadline(spec, template),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels=dict(labels)),
                spec=PodSpec(
                    containers=[container],
                    restartPolicy="Never",
                    automountServiceAccountToken=False,
                    serviceAccountName=template.service_account_name,
                    nodeSelector=dict(template.node_selector) or None,
                    volumes=volumes,
                ),
            ),
        ),
    )


def active_deadline(spec: JobSpec, template: JobTemplate) -> int | None:
    """The Job's `activeDeadlineSeconds`: the step's `timeout` (whole seconds, at least 1),
    else the template's (K8S_JOB_ACTIVE_DEADLINE_SECONDS)."""
    if spec.timeout is not None:
        return max(math.ceil(spec.timeout), 1)
    return template.active_deadline_seconds


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
    error_class: str | None = None
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
                timed_out = deadline_exceeded(job)
                if timed_out is not None:
                    error_class, message = ErrorClass.TIMEOUT.value, timed_out
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
        error_class=error_class,
    )


def gone(status: JobStatus) -> JobStatus:
    """The last word on a Job that was deleted."""
    return JobStatus(
        name=status.name,
        queue_id=status.queue_id,
        step_index=status.step_index,
        phase=JobPhase.GONE,
        attempts=status.attempts,
        message="job deleted",
    )
