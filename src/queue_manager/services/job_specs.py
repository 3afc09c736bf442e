"""What a step's job gets (docs/worker-protocol.md, docs/operations.md): its environment, image and
credentials by reference."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from queue_manager.domain.errors import LaunchFailed
from queue_manager.domain.models import QueueState, Step
from queue_manager.job_contract import PARAMETER_ENV, Env
from queue_manager.ports import JobSpec


@dataclass(frozen=True)
class JobConfig:
    images: dict[str, str]
    allowed_images: frozenset[str] = frozenset()
    kafka_bootstrap_servers: str = ""
    arango_url: str = ""
    arango_db: str = ""
    control_topic: str = "queue-control"
    events_topic: str = "queue-events"
    #: the job's CA_PATH when Kafka uses a CA ("": none): on Kubernetes where the CA is mounted
    #: in the pod, locally the service's own CA_PATH
    ca_path: str = ""
    #: env name -> (secret, key); only references ever reach a job
    secret_env: dict[str, tuple[str, str]] = field(default_factory=dict)


def job_spec(queue: QueueState, step: Step, config: JobConfig) -> JobSpec:
    image = config.images[step.target.value]
    if step.image is not None:
        if step.image not in config.allowed_images:
            raise LaunchFailed(f"image {step.image!r} is not in the allow-list")
        image = step.image
    env = {
        Env.QUEUE_ID: queue.id,
        Env.SYMBOL: queue.symbol,
        Env.TYPE: step.type,
        Env.TIME_RANGE: queue.time_range,
        Env.KAFKA_TOPIC: step.kafka_topic or "",
        Env.COLLECTION_NAME: step.collection_name or "",
        Env.TELEMETRY_PRODUCER_ID: step.telemetry_id,
        Env.QUEUE_CONTROL_TOPIC: config.control_topic,
        Env.QUEUE_EVENTS_TOPIC: config.events_topic,
        Env.TELEMETRY_TOPIC: config.events_topic,
        Env.KAFKA_BOOTSTRAP_SERVERS: config.kafka_bootstrap_servers,
        Env.ARANGO_URL: config.arango_url,
        Env.ARANGO_DB: config.arango_db,
    }
    if config.ca_path:
        env[Env.CA_PATH] = config.ca_path
    for name, var in PARAMETER_ENV.items():
        value = step.params.get(name)
        # COLLECTION_NAME is set above from the step's resolved collection.
        if value is None or name == "collection_name":
            continue
        env[var] = ",".join(value) if isinstance(value, list) else str(value)
    if step.params.get("simulate"):
        # The reference worker's misbehaviour on purpose (docs/pipelines.md).
        env[Env.QM_SIMULATE] = json.dumps(step.params["simulate"], separators=(",", ":"))
    return JobSpec(
        name=step.job_name,
        queue_id=queue.id,
        step_index=step.index,
        target=step.target.value,
        image=image,
        env=env,
        secret_env=dict(config.secret_env),
        max_retries=step.max_retries,
        timeout=step.timeout,
    )
