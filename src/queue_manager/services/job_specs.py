"""What a step's job gets (docs/worker-protocol.md, docs/operations.md): its environment, image and
credentials by reference."""

from __future__ import annotations

from dataclasses import dataclass, field

from queue_manager.domain.errors import LaunchFailed
from queue_manager.domain.models import QueueState, Step
from queue_manager.domain.requests import PARAMETER_ENV
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
    #: env name -> (secret, key); only references ever reach a job
    secret_env: dict[str, tuple[str, str]] = field(default_factory=dict)


def job_spec(queue: QueueState, step: Step, config: JobConfig) -> JobSpec:
    image = config.images[step.target.value]
    if step.image is not None:
        if step.image not in config.allowed_images:
            raise LaunchFailed(f"image {step.image!r} is not in the allow-list")
        image = step.image
    env = {
        "QUEUE_ID": queue.id,
        "SYMBOL": queue.symbol,
        "TYPE": step.type,
        "TIME_RANGE": queue.time_range,
        "KAFKA_TOPIC": step.kafka_topic or "",
        "COLLECTION_NAME": step.collection_name or "",
        "TELEMETRY_PRODUCER_ID": step.telemetry_id,
        "QUEUE_CONTROL_TOPIC": config.control_topic,
        "QUEUE_EVENTS_TOPIC": config.events_topic,
        "KAFKA_BOOTSTRAP_SERVERS": config.kafka_bootstrap_servers,
        "ARANGO_URL": config.arango_url,
        "ARANGO_DB": config.arango_db,
    }
    for name, var in PARAMETER_ENV.items():
        value = step.params.get(name)
        if value is None or name == "collection_name":
            continue
        env[var] = ",".join(value) if isinstance(value, list) else str(value)
    return JobSpec(
        name=step.job_name,
        queue_id=queue.id,
        step_index=step.index,
        target=step.target.value,
        image=image,
        env=env,
        secret_env=dict(config.secret_env),
        max_retries=step.max_retries,
    )
