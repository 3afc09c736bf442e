"""The job contract (docs/pipelines.md, docs/worker-protocol.md): what the service and a
StreamForge job agree on — the targets, the step parameters each needs, the environment a job
gets, the telemetry and command shapes, the exit file, the time-range and streaming rules.

It sits beside the layers rather than inside the domain because the worker SDK imports it and a
job image carries the SDK without the service: so it imports nothing of ours and no third-party
library, and the domain, the services, the settings, the launchers and the SDK all read it
from here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from enum import StrEnum
from typing import Final

# -- targets and step parameters --------------------------------------------------------------


class Target(StrEnum):
    """The StreamForge services a step can run."""

    LOADER = "loader-producer"
    CONNECTOR = "arango-connector"
    GRAPH_BUILDER = "graph-builder"
    GNN_TRAINER = "gnn-trainer"
    VISUALIZER = "visualizer"


TARGETS: Final = tuple(target.value for target in Target)

#: step parameter (request field) -> the variable that carries it into the job
PARAMETER_ENV: Final[Mapping[str, str]] = {
    "interval": "INTERVAL",
    "collection_name": "COLLECTION_NAME",
    "collection_inputs": "COLLECTION_INPUTS",
    "collection_output": "COLLECTION_OUTPUT",
    "graph_collection": "GRAPH_COLLECTION",
    "model_output": "MODEL_OUTPUT",
    "inference_interval": "INFERENCE_INTERVAL",
    "source": "SOURCE",
}

#: per target, the parameters it cannot work without; each tuple is satisfied by any one of its
#: alternatives
REQUIRED_PARAMETERS: Final[Mapping[Target, tuple[tuple[str, ...], ...]]] = {
    Target.GRAPH_BUILDER: (("collection_inputs",), ("collection_output",)),
    Target.GNN_TRAINER: (("graph_collection",), ("model_output", "inference_interval")),
    Target.VISUALIZER: (("source",),),
}


def missing_parameters(target: Target | str, has: Callable[[str], bool]) -> list[tuple[str, ...]]:
    """The requirements of `target` that `has(parameter)` finds unmet, in declaration order.

    The planner asks this of a request, the reference worker of its environment, so a step the
    service accepts is one the worker can run.
    """
    return [
        alternatives
        for alternatives in REQUIRED_PARAMETERS.get(Target(target), ())
        if not any(has(name) for name in alternatives)
    ]


# -- the environment of a job -----------------------------------------------------------------


class Env:
    """Names of the variables a job receives; the platform's, verbatim."""

    QUEUE_ID: Final = "QUEUE_ID"
    SYMBOL: Final = "SYMBOL"
    TYPE: Final = "TYPE"
    TIME_RANGE: Final = "TIME_RANGE"
    KAFKA_TOPIC: Final = "KAFKA_TOPIC"
    COLLECTION_NAME: Final = "COLLECTION_NAME"
    TELEMETRY_PRODUCER_ID: Final = "TELEMETRY_PRODUCER_ID"
    QUEUE_CONTROL_TOPIC: Final = "QUEUE_CONTROL_TOPIC"
    QUEUE_EVENTS_TOPIC: Final = "QUEUE_EVENTS_TOPIC"
    #: the platform's workers' name for the events topic (the same value)
    TELEMETRY_TOPIC: Final = "TELEMETRY_TOPIC"
    KAFKA_BOOTSTRAP_SERVERS: Final = "KAFKA_BOOTSTRAP_SERVERS"
    KAFKA_USER: Final = "KAFKA_USER"
    KAFKA_PASSWORD: Final = "KAFKA_PASSWORD"
    # The platform's workers read the Kafka credential per client: producer (data and
    # telemetry) and consumer (control listener, data consumer).
    KAFKA_USER_PRODUCER: Final = "KAFKA_USER_PRODUCER"
    KAFKA_PASSWORD_PRODUCER: Final = "KAFKA_PASSWORD_PRODUCER"
    KAFKA_USER_CONSUMER: Final = "KAFKA_USER_CONSUMER"
    KAFKA_PASSWORD_CONSUMER: Final = "KAFKA_PASSWORD_CONSUMER"
    CA_PATH: Final = "CA_PATH"
    ARANGO_URL: Final = "ARANGO_URL"
    ARANGO_DB: Final = "ARANGO_DB"
    ARANGO_USER: Final = "ARANGO_USER"
    ARANGO_PASSWORD: Final = "ARANGO_PASSWORD"
    # Embedded mode only: the local launcher sets these and the worker reports over HTTP.
    QM_URL: Final = "QM_URL"
    QM_WORKER_TOKEN: Final = "QM_WORKER_TOKEN"
    QM_EXIT_FILE: Final = "QM_EXIT_FILE"
    QM_JOB_NAME: Final = "QM_JOB_NAME"
    #: the reference worker's `simulate` step parameter, as JSON (docs/pipelines.md)
    QM_SIMULATE: Final = "QM_SIMULATE"


#: never echoed in an error message or a log line
SECRET_ENV: Final = frozenset(
    {
        Env.KAFKA_PASSWORD,
        Env.KAFKA_PASSWORD_PRODUCER,
        Env.KAFKA_PASSWORD_CONSUMER,
        Env.ARANGO_PASSWORD,
        Env.QM_WORKER_TOKEN,
    }
)

#: credentials a job gets from a Secret by reference, never as literal values:
#: env name -> key in the Secret. The producer and consumer names are the same credential.
KAFKA_SECRET_KEYS: Final[Mapping[str, str]] = {
    Env.KAFKA_USER: "username",
    Env.KAFKA_PASSWORD: "password",
    Env.KAFKA_USER_PRODUCER: "username",
    Env.KAFKA_PASSWORD_PRODUCER: "password",
    Env.KAFKA_USER_CONSUMER: "username",
    Env.KAFKA_PASSWORD_CONSUMER: "password",
}
ARANGO_SECRET_KEYS: Final[Mapping[str, str]] = {
    Env.ARANGO_USER: "username",
    Env.ARANGO_PASSWORD: "password",
}

#: what the platform's own workers read under another name than the SDK does: their name -> the
#: SDK's. A job gets both, with the same value (or the same Secret key).
PLATFORM_ALIASES: Final[Mapping[str, str]] = {
    Env.TELEMETRY_TOPIC: Env.QUEUE_EVENTS_TOPIC,
    Env.KAFKA_USER_PRODUCER: Env.KAFKA_USER,
    Env.KAFKA_PASSWORD_PRODUCER: Env.KAFKA_PASSWORD,
    Env.KAFKA_USER_CONSUMER: Env.KAFKA_USER,
    Env.KAFKA_PASSWORD_CONSUMER: Env.KAFKA_PASSWORD,
}

# -- telemetry and commands -------------------------------------------------------------------


class Reported(StrEnum):
    """What a worker reports (`event` on queue-events, `status` on queue-control)."""

    STARTED = "started"
    LOADING = "loading"
    FINISHED = "finished"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    PONG = "pong"


class Telemetry:
    """Field names of a telemetry message. On queue-events the status is `event` (`status` is
    accepted too); on queue-control a message is telemetry when its `type` is `telemetry`."""

    EVENT: Final = "event"
    STATUS: Final = "status"
    QUEUE_ID: Final = "queue_id"
    PRODUCER: Final = "producer"
    RECORDS_WRITTEN: Final = "records_written"
    LAST_LOADED_TIMESTAMP: Final = "last_loaded_timestamp"
    FINISHED: Final = "finished"
    MESSAGE: Final = "message"
    ERROR_MESSAGE: Final = "error_message"
    #: optional, on `error` (docs/worker-protocol.md): the worker's own class of the failure,
    #: the HTTP status it got, and the Retry-After it was given (seconds)
    ERROR_CLASS: Final = "error_class"
    HTTP_STATUS: Final = "http_status"
    RETRY_AFTER: Final = "retry_after"
    #: optional: the exact coverage of the step so far (docs/worker-protocol.md), an object
    #: {"loaded": [{"from", "to"}...], "gaps": [{"from", "to"}...]} of ISO instants
    COVERAGE: Final = "coverage"
    SENT_AT: Final = "sent_at"
    #: older workers' name for sent_at
    TIMESTAMP: Final = "timestamp"
    #: queue-control only: when the job finished
    FINISHED_AT: Final = "finished_at"
    #: the step type on queue-events; the message kind on queue-control
    TYPE: Final = "type"
    #: sent by workers for people reading the topic; the service does not store it
    SYMBOL: Final = "symbol"


#: `type` of a telemetry message on queue-control (the rest there are commands)
CONTROL_TELEMETRY_TYPE: Final = "telemetry"


class CommandName(StrEnum):
    START = "start"
    STOP = "stop"
    PING = "ping"


class CommandField:
    """Field names of a command on queue-control (and of `data.commands` over HTTP)."""

    QUEUE_ID: Final = "queue_id"
    COMMAND: Final = "command"
    PAYLOAD: Final = "payload"
    COMMAND_ID: Final = "command_id"
    SENT_AT: Final = "sent_at"


#: embedded mode: where a local worker POSTs telemetry and polls its commands
TELEMETRY_PATH: Final = "/internal/telemetry"
COMMANDS_PATH: Final = "/internal/commands"

# -- the exit file ----------------------------------------------------------------------------


class ExitFile:
    """The JSON object a job writes atomically to QM_EXIT_FILE as it ends, so the local launcher
    knows how it ended even when its last report was lost."""

    OUTCOME: Final = "outcome"  # finished | error | interrupted
    QUEUE_ID: Final = "queue_id"
    PRODUCER: Final = "producer"
    RECORDS_WRITTEN: Final = "records_written"
    ERROR_MESSAGE: Final = "error_message"


# -- rules ------------------------------------------------------------------------------------

TIME_RANGE_FORMAT: Final = "YYYY-MM-DD:YYYY-MM-DD"
_TIME_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2}):(\d{4}-\d{2}-\d{2})$")


def parse_time_range(value: str) -> tuple[date, date]:
    """`YYYY-MM-DD:YYYY-MM-DD`, real dates, start <= end; ValueError saying which rule failed."""
    match = _TIME_RANGE.match(value)
    if not match:
        raise ValueError(f"must be {TIME_RANGE_FORMAT}")
    try:
        start, end = date.fromisoformat(match.group(1)), date.fromisoformat(match.group(2))
    except ValueError as exc:
        raise ValueError(f"not a real date ({exc})") from None
    if start > end:
        raise ValueError("start date is after end date")
    return start, end


def is_streaming(step_type: str) -> bool:
    """A streaming step runs until stopped; a batch step finishes on its own."""
    return (
        step_type.startswith("ws_")
        or step_type.startswith("realtime_")
        or step_type.endswith("_stream")
        or step_type == "ws"
    )
