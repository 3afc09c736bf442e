"""The job environment the service sets for every step (docs/pipelines.md,
docs/worker-protocol.md), read once at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from queue_manager.job_contract import PARAMETER_ENV, SECRET_ENV, Env, parse_time_range

Transport = Literal["http", "kafka"]

# While set, validation sees only the mapping handed to `WorkerEnv.load`, not os.environ.
_EXPLICIT_ONLY: ContextVar[bool] = ContextVar("worker_env_explicit_only", default=False)


class WorkerEnvError(ValueError):
    """The job environment is incomplete or malformed; the message names each variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid worker environment: " + "; ".join(problems))


def _var(name: str) -> Any:
    return Field(default=None, validation_alias=name)


class WorkerEnv(BaseSettings):
    """Every variable a StreamForge job receives; names are the platform's, verbatim."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        populate_by_name=False,
        str_strip_whitespace=True,
    )

    queue_id: str = Field(validation_alias=Env.QUEUE_ID, min_length=1, max_length=64)
    symbol: str = Field(validation_alias=Env.SYMBOL, min_length=1)
    step_type: str = Field(validation_alias=Env.TYPE, min_length=1)
    time_range: str = Field(validation_alias=Env.TIME_RANGE)
    telemetry_producer_id: str = Field(validation_alias=Env.TELEMETRY_PRODUCER_ID, min_length=1)
    kafka_topic: str | None = _var(Env.KAFKA_TOPIC)
    collection_name: str | None = _var(Env.COLLECTION_NAME)

    queue_control_topic: str = Field("queue-control", validation_alias=Env.QUEUE_CONTROL_TOPIC)
    queue_events_topic: str = Field("queue-events", validation_alias=Env.QUEUE_EVENTS_TOPIC)
    kafka_bootstrap_servers: str | None = _var(Env.KAFKA_BOOTSTRAP_SERVERS)
    kafka_user: str | None = _var(Env.KAFKA_USER)
    kafka_password: SecretStr | None = _var(Env.KAFKA_PASSWORD)
    ca_path: Path | None = _var(Env.CA_PATH)
    arango_url: str | None = _var(Env.ARANGO_URL)
    arango_db: str | None = _var(Env.ARANGO_DB)

    # docs/pipelines.md step parameters.
    interval: str | None = _var(PARAMETER_ENV["interval"])
    collection_inputs: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=PARAMETER_ENV["collection_inputs"]
    )
    collection_output: str | None = _var(PARAMETER_ENV["collection_output"])
    graph_collection: str | None = _var(PARAMETER_ENV["graph_collection"])
    model_output: str | None = _var(PARAMETER_ENV["model_output"])
    inference_interval: str | None = _var(PARAMETER_ENV["inference_interval"])
    source: str | None = _var(PARAMETER_ENV["source"])

    # Embedded mode: the local launcher sets these and the worker reports over HTTP.
    qm_url: str | None = _var(Env.QM_URL)
    qm_worker_token: SecretStr | None = _var(Env.QM_WORKER_TOKEN)
    qm_exit_file: Path | None = _var(Env.QM_EXIT_FILE)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # A job gets its settings from its environment only; a stray .env must not leak in.
        if _EXPLICIT_ONLY.get():
            return (init_settings,)
        return (init_settings, env_settings)

    @field_validator("time_range")
    @classmethod
    def _valid_range(cls, value: str) -> str:
        parse_time_range(value)
        return value

    @field_validator("collection_inputs", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("qm_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _servers(cls, value: str | None) -> str | None:
        if value is None:
            return None
        servers = [part.strip() for part in value.split(",") if part.strip()]
        if not servers or any(":" not in server for server in servers):
            raise ValueError("must be a comma-separated list of host:port")
        return ",".join(servers)

    @model_validator(mode="after")
    def _transport_complete(self) -> WorkerEnv:
        problems: list[str] = []
        if self.qm_url is not None:
            if self.qm_worker_token is None:
                problems.append("QM_WORKER_TOKEN: required when QM_URL is set")
        elif self.kafka_bootstrap_servers is None:
            problems.append(
                "KAFKA_BOOTSTRAP_SERVERS: missing (or set QM_URL and QM_WORKER_TOKEN "
                "to report over HTTP)"
            )
        elif self.kafka_user is not None:
            if self.kafka_password is None:
                problems.append("KAFKA_PASSWORD: required when KAFKA_USER is set")
            if self.ca_path is not None and not self.ca_path.is_file():
                problems.append(f"CA_PATH: no such file {str(self.ca_path)!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> WorkerEnv:
        """Read `environ` (default: the process environment); raise WorkerEnvError, never a
        pydantic traceback, naming every missing or malformed variable."""
        source = os.environ if environ is None else environ
        names = {_alias(field) for field in cls.model_fields.values()}
        values: dict[str, Any] = {
            name: source[name] for name in names if source.get(name, "").strip()
        }
        token = _EXPLICIT_ONLY.set(True)
        try:
            return cls(**values)
        except ValidationError as exc:
            raise WorkerEnvError(_describe(exc)) from None
        finally:
            _EXPLICIT_ONLY.reset(token)

    @property
    def transport(self) -> Transport:
        return "http" if self.qm_url is not None else "kafka"

    @property
    def start_date(self) -> date:
        return parse_time_range(self.time_range)[0]

    @property
    def end_date(self) -> date:
        return parse_time_range(self.time_range)[1]

    @property
    def range_start(self) -> datetime:
        """The first instant of TIME_RANGE (start of its first day, UTC)."""
        return datetime.combine(self.start_date, time.min, UTC)

    @property
    def range_end(self) -> datetime:
        """The last instant of TIME_RANGE (end of its last day, UTC)."""
        return datetime.combine(self.end_date, time.max, UTC)


def _alias(field: Any) -> str:
    alias = field.validation_alias
    assert isinstance(alias, str)
    return alias


def _describe(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        name = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
        if error["type"] == "missing":
            problems.append(f"{name}: missing")
            continue
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        if not name:
            # A model-level check already names its variables.
            problems.append(message)
        elif name in SECRET_ENV or not isinstance(error.get("input"), str):
            problems.append(f"{name}: {message}")
        else:
            problems.append(f"{name}: {message} (got {error['input']!r})")
    return problems
