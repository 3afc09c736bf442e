"""Configuration (docs/operations.md): environment variables, with `.env` for local development.

The platform's names are used verbatim. A missing or malformed value fails start-up with one
line naming the variable and what it allows (`load_settings`; a backend without its settings:
the Misconfigured its adapter raises, `kafka_connection` for Kafka).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import ssl
from enum import StrEnum
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from queue_manager.domain.errors import Misconfigured
from queue_manager.domain.planner import DEFAULT_LOADER_TYPES
from queue_manager.domain.rate_limits import DEFAULT_GROUPS as DEFAULT_RATE_LIMIT_GROUPS
from queue_manager.domain.rate_limits import RateLimitGroups
from queue_manager.domain.requests import TYPE_PATTERN
from queue_manager.domain.retry import RetryPolicy
from queue_manager.job_contract import Target


class StoreBackend(StrEnum):
    AUTO = "auto"
    SQLITE = "sqlite"
    ARANGO = "arango"


class BusBackend(StrEnum):
    AUTO = "auto"
    MEMORY = "memory"
    KAFKA = "kafka"


class LauncherBackend(StrEnum):
    AUTO = "auto"
    LOCAL = "local"
    KUBERNETES = "kubernetes"


class AuthMode(StrEnum):
    #: on when a way to authenticate is configured; else open on loopback, refused elsewhere
    AUTO = "auto"
    ON = "on"
    NONE = "none"


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Kafka
    kafka_bootstrap_servers: str | None = None
    kafka_user: str | None = None
    kafka_password: SecretStr | None = None
    ca_path: Path | None = None
    queue_control_topic: str = "queue-control"
    queue_events_topic: str = "queue-events"
    queue_updates_topic: str = "queue-manager-updates"
    kafka_group_id: str = "queue-manager"
    #: partitions of each data topic `<queue_id>.<type>` queue-manager creates
    data_topic_partitions: int = Field(default=3, ge=1, le=10_000)

    # ArangoDB
    arango_url: str | None = None
    arango_db: str = "streamforge"
    arango_user: str = "root"
    arango_password: SecretStr | None = None

    # Kubernetes
    k8s_namespace: str = "default"
    loader_image: str = "streamforge/loader-producer:latest"
    consumer_image: str = "streamforge/arango-connector:latest"
    graph_builder_image: str = "streamforge/graph-builder:latest"
    gnn_trainer_image: str = "streamforge/gnn-trainer:latest"
    visualizer_image: str = "streamforge/visualizer:latest"
    allowed_images: Annotated[list[str], NoDecode] = Field(default_factory=list)
    kafka_secret_name: str = "kafka-credentials"
    arango_secret_name: str = "arango-credentials"
    kubeconfig: Path | None = None
    #: client-side limit on Kubernetes API calls; 0 disables it
    kube_qps: float = Field(default=20.0, ge=0, le=10_000)
    kube_burst: int = Field(default=40, ge=1, le=100_000)
    kube_watch_timeout_seconds: int = Field(default=240, ge=10)
    kube_watch_silence_seconds: float = Field(default=300.0, gt=0)
    k8s_job_ttl_seconds: int | None = Field(default=3600, ge=0)
    #: none by default: streaming steps run until stopped
    k8s_job_active_deadline_seconds: int | None = Field(default=None, ge=1)
    k8s_job_cpu_request: str = "100m"
    k8s_job_memory_request: str = "256Mi"
    k8s_job_cpu_limit: str = ""
    k8s_job_memory_limit: str = "1Gi"
    #: "disktype=ssd,zone=a"
    k8s_node_selector: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    k8s_job_service_account: str | None = None
    k8s_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    #: the Kafka CA, mounted read-only into every Job from an existing Secret or ConfigMap (one
    #: of them), so the job's CA_PATH is K8S_CA_MOUNT_PATH/K8S_CA_KEY; neither: jobs get the
    #: service's own CA_PATH, and their images must carry the file there
    k8s_ca_secret: str = ""
    k8s_ca_configmap: str = ""
    k8s_ca_key: str = "ca.crt"
    k8s_ca_mount_path: str = "/etc/streamforge/kafka-ca"

    # Backends: auto picks production when its settings are present.
    store_backend: StoreBackend = StoreBackend.AUTO
    bus_backend: BusBackend = BusBackend.AUTO
    launcher_backend: LauncherBackend = LauncherBackend.AUTO

    # Embedded mode
    data_dir: Path = Path("data")
    sqlite_path: Path | None = None
    public_url: str | None = None
    worker_token_secret: SecretStr | None = None
    #: the program run for every local job (default: the reference worker); the target is
    #: appended, then LOCAL_WORKER_ARGS
    local_worker_command: str = ""
    local_worker_args: str = ""
    #: per target, a program run instead for its local jobs, exactly as written (no target, no
    #: LOCAL_WORKER_ARGS): e.g. the platform's own entry points
    local_loader_command: str = ""
    local_consumer_command: str = ""
    local_graph_builder_command: str = ""
    local_gnn_trainer_command: str = ""
    local_visualizer_command: str = ""
    local_kill_timeout_seconds: float = Field(default=5.0, ge=0, le=300)

    # Behaviour
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    stop_grace_seconds: float = Field(default=30.0, ge=0, le=86400)
    reconcile_seconds: float = Field(default=5.0, gt=0, le=3600)
    launch_grace_seconds: float = Field(default=30.0, gt=0, le=3600)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    ws_heartbeat_seconds: float = Field(default=15.0, gt=0, le=20)
    #: most keys (a queue's summary, one of its steps) a WebSocket client may be behind by
    ws_client_buffer: int = Field(default=10_000, ge=10)
    #: a WebSocket client whose pending send has been blocked this long is closed (1013)
    ws_idle_seconds: float = Field(default=60.0, gt=0, le=3600)
    #: how long an update may wait to share a wake-up and a frame with the next ones
    ws_flush_seconds: float = Field(default=0.05, gt=0, le=1)
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.AUTO
    #: delete queues that ended more than this many days ago (with their keys); unset: keep all
    retention_days: float | None = Field(default=None, gt=0)
    retention_sweep_seconds: float = Field(default=300.0, gt=0, le=86400)
    #: the coverage ledger (docs/coverage.md): a JSON file of known outages, shown as
    #: `expected_gap` and never filled; and how often the cells-per-state gauges are counted
    expected_gaps_file: Path | None = None
    coverage_metrics_seconds: float = Field(default=60.0, gt=0, le=86400)
    #: admission (docs/operations.md): queues running at once, all replicas together; unset: any
    max_running_queues: int | None = Field(default=None, ge=1)
    #: jobs of a target running at once, e.g. `gnn-trainer=2,graph-builder=4`
    max_running_jobs: Annotated[dict[Target, int], NoDecode] = Field(default_factory=dict)

    #: the platform's workers (docs/pipelines.md, docs/worker-protocol.md): the data type a loader
    #: runs for the single form's shorthand, e.g. `api=api_candles_1m,ws=ws_candles_1m`
    loader_types: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_LOADER_TYPES)
    )
    #: how long a terminal report from Kafka waits for an earlier-sent one still on its way
    #: (unkeyed reports arrive out of order across partitions)
    telemetry_reorder_seconds: float = Field(default=2.0, ge=0, le=60)
    #: a connector whose producers finished and whose group consumed to the end of its topic
    #: ends `finished` once neither its lag nor its records moved for this long
    connector_drain_quiet_seconds: float = Field(default=10.0, ge=0, le=3600)
    #: how often held reports and draining connectors are looked at
    step_watch_seconds: float = Field(default=1.0, gt=0, le=60)
    #: a step that reported `finished` whose job still runs after this long has its job deleted
    finished_job_grace_seconds: float = Field(default=30.0, ge=0, le=86400)
    #: the retry policy of a step whose request has none, per target (docs/pipelines.md
    #: "Retry"): a JSON object, e.g. `{"loader-producer": {"limit": 3}}`
    retry_defaults: Annotated[dict[Target, RetryPolicy], NoDecode] = Field(default_factory=dict)

    #: how soon a schedule created or changed on one replica is seen by the others
    schedule_poll_seconds: float = Field(default=10.0, gt=0, le=300)

    #: rate-limit groups (docs/operations.md "Rate-limit groups"): a JSON object of group ->
    #: `target:type-glob` patterns; unset: the loader's `api_*`/`rest_*` types are `exchange`
    rate_limit_groups: Annotated[dict[str, list[str]], NoDecode] = Field(
        default_factory=lambda: {g: list(p) for g, p in DEFAULT_RATE_LIMIT_GROUPS.items()}
    )
    #: how many held steps a closed breaker lets launch per second
    rate_limit_release_per_second: float = Field(default=2.0, gt=0, le=1000)
    #: how old the breakers the launch path goes by may be (a breaker opened on another
    #: replica holds this one's launches that much later at most)
    rate_limit_cache_seconds: float = Field(default=0.5, ge=0, le=10)
    #: how often each replica looks whether a breaker closed
    rate_limit_poll_seconds: float = Field(default=1.0, gt=0, le=60)

    # Access (docs/security.md)
    auth_mode: AuthMode = AuthMode.AUTO
    #: read-only `name role sha256` lines, e.g. mounted from a Kubernetes Secret
    auth_tokens_file: Path | None = None
    #: signs session cookies; replicas must share it (default: generated once into DATA_DIR)
    auth_session_secret: SecretStr | None = None
    auth_session_seconds: int = Field(default=8 * 3600, ge=60, le=30 * 86400)
    #: how soon a token created or revoked, or a session logged out, on one replica is seen by
    #: the others
    auth_refresh_seconds: float = Field(default=2.0, gt=0, le=60)
    metrics_auth: bool = False
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_roles_claim: str = "roles"
    #: "qm-admins=admin,platform-ops=operator"; role names map to themselves
    oidc_role_map: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)

    @field_validator("allowed_images", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return _json(value, list, _RULES["allowed_images"])
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("k8s_node_selector", mode="before")
    @classmethod
    def _node_pairs(cls, value: Any) -> Any:
        return _pairs(value, _RULES["k8s_node_selector"])

    @field_validator("max_running_jobs", mode="before")
    @classmethod
    def _job_limits(cls, value: Any) -> Any:
        rule = _RULES["max_running_jobs"]
        pairs = _pairs(value, rule)
        if isinstance(pairs, dict) and not all(
            key in Target._value2member_map_ and str(n).isdigit() and int(n) >= 1
            for key, n in pairs.items()
        ):
            raise ValueError(rule)
        return pairs

    @field_validator("loader_types", mode="before")
    @classmethod
    def _loader_types(cls, value: Any) -> Any:
        rule = _RULES["loader_types"]
        pairs = _pairs(value, rule)
        if isinstance(pairs, dict):
            if not all(
                key in DEFAULT_LOADER_TYPES and re.fullmatch(TYPE_PATTERN, kind) and "_" in kind
                for key, kind in pairs.items()
            ):
                raise ValueError(rule)
            return {**DEFAULT_LOADER_TYPES, **pairs}
        return pairs

    @field_validator("retry_defaults", mode="before")
    @classmethod
    def _retry_defaults(cls, value: Any) -> Any:
        rule = _RULES["retry_defaults"]
        if isinstance(value, str):
            value = _json(value, dict, rule) if value.strip() else {}
        if isinstance(value, dict):
            unknown = [key for key in value if key not in Target._value2member_map_]
            if unknown:
                raise ValueError(f"{rule}; {', '.join(map(str, unknown))} is no target")
            policies: dict[str, RetryPolicy] = {}
            for key, policy in value.items():
                try:
                    policies[key] = RetryPolicy.model_validate(policy)
                except ValidationError as exc:
                    first = exc.errors(include_url=False)[0]
                    where = ".".join([key, *(str(p) for p in first["loc"])])
                    raise ValueError(f"{rule}; {where}: {first['msg']}") from None
            return policies
        return value

    @field_validator("rate_limit_groups", mode="before")
    @classmethod
    def _rate_limit_groups(cls, value: Any) -> Any:
        rule = _RULES["rate_limit_groups"]
        if isinstance(value, str):
            value = _json(value, dict, rule) if value.strip() else {}
        if isinstance(value, dict):
            try:
                RateLimitGroups.parse(value)
            except ValueError as exc:
                raise ValueError(f"{rule}; {exc}") from None
        return value

    @property
    def rate_limit_group_rules(self) -> RateLimitGroups:
        return RateLimitGroups.parse(self.rate_limit_groups)

    @field_validator("oidc_role_map", mode="before")
    @classmethod
    def _role_pairs(cls, value: Any) -> Any:
        rule = _RULES["oidc_role_map"]
        pairs = _pairs(value, rule)
        if isinstance(pairs, dict) and any(
            role not in ("viewer", "operator", "admin") for role in pairs.values()
        ):
            raise ValueError(rule)
        return pairs

    @field_validator(
        "local_worker_command",
        "local_worker_args",
        "local_loader_command",
        "local_consumer_command",
        "local_graph_builder_command",
        "local_gnn_trainer_command",
        "local_visualizer_command",
    )
    @classmethod
    def _command_line(cls, value: str) -> str:
        try:
            shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"must be a shell-quoted command line ({exc})") from None
        return value

    @field_validator("k8s_ca_configmap")
    @classmethod
    def _one_ca_source(cls, value: str, info: ValidationInfo) -> str:
        if value and info.data.get("k8s_ca_secret"):
            raise ValueError(
                "K8S_CA_SECRET and K8S_CA_CONFIGMAP are both set; name the Kafka CA's Secret "
                "or its ConfigMap, not both"
            )
        return value

    @field_validator("k8s_ca_key")
    @classmethod
    def _ca_key(cls, value: str) -> str:
        if not value or "/" in value or value in (".", ".."):
            raise ValueError("must be the key of the CA in the Secret or ConfigMap, e.g. ca.crt")
        return value

    @field_validator("k8s_ca_mount_path")
    @classmethod
    def _ca_mount_path(cls, value: str) -> str:
        if not value.startswith("/") or value == "/":
            raise ValueError("must be an absolute directory in the pod, e.g. /etc/kafka-ca")
        return value.rstrip("/")

    @field_validator("sqlite_path")
    @classmethod
    def _sqlite_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        rule = "must be the SQLite database's file (missing directories are created)"
        # A directory is never a database file. A path that cannot be created yet is the store
        # being unavailable, not a wrong setting: the service starts, says so and recovers.
        if value.is_dir():
            raise ValueError(f"{rule}; {value} is a directory")
        return value

    @field_validator("arango_url")
    @classmethod
    def _arango_urls(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # unset (an empty value in a ConfigMap): embedded SQLite
        urls = [url.strip() for url in value.split(",")]
        if not all(re.fullmatch(r"https?://[^\s/,]+(/\S*)?", url) for url in urls):
            raise ValueError(
                "must be the ArangoDB URL, or several separated by commas, each http:// or "
                "https://, e.g. http://arangodb:8529"
            )
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be the issuer's URL, e.g. https://sso.example.com/realms/x")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @property
    def resolved_store(self) -> StoreBackend:
        if self.store_backend is not StoreBackend.AUTO:
            return self.store_backend
        return StoreBackend.ARANGO if self.arango_url else StoreBackend.SQLITE

    @property
    def resolved_bus(self) -> BusBackend:
        if self.bus_backend is not BusBackend.AUTO:
            return self.bus_backend
        return BusBackend.KAFKA if self.kafka_bootstrap_servers else BusBackend.MEMORY

    @property
    def resolved_launcher(self) -> LauncherBackend:
        if self.launcher_backend is not LauncherBackend.AUTO:
            return self.launcher_backend
        in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        return (
            LauncherBackend.KUBERNETES
            if in_cluster or os.environ.get("KUBECONFIG")
            else LauncherBackend.LOCAL
        )

    @property
    def sqlite_file(self) -> Path:
        return self.sqlite_path or self.data_dir / "queue-manager.db"

    @property
    def worker_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def k8s_ca_path(self) -> str | None:
        """Where the Kafka CA is inside a Job's pod when K8S_CA_SECRET or K8S_CA_CONFIGMAP
        names it; None when neither does."""
        if not (self.k8s_ca_secret or self.k8s_ca_configmap):
            return None
        return f"{self.k8s_ca_mount_path}/{self.k8s_ca_key}"

    def command_for(self, target: Target | str) -> str:
        """The program run for the target's local jobs instead of LOCAL_WORKER_COMMAND ("")."""
        return {
            Target.LOADER: self.local_loader_command,
            Target.CONNECTOR: self.local_consumer_command,
            Target.GRAPH_BUILDER: self.local_graph_builder_command,
            Target.GNN_TRAINER: self.local_gnn_trainer_command,
            Target.VISUALIZER: self.local_visualizer_command,
        }[Target(target)]

    def kafka_connection(self) -> tuple[str, dict[str, Any]]:
        """Where and how every Kafka client of the service connects: the servers and the
        security options (SASL_SSL with a user, else PLAINTEXT)."""
        from queue_manager.kafka_security import client_security  # aiokafka, only when used

        if not self.kafka_bootstrap_servers:
            raise Misconfigured("KAFKA_BOOTSTRAP_SERVERS: required with BUS_BACKEND=kafka")
        password = self.kafka_password.get_secret_value() if self.kafka_password else None
        if self.kafka_user:
            if not password:
                raise Misconfigured("KAFKA_PASSWORD: required when KAFKA_USER is set (SASL_SSL)")
            if self.ca_path is not None:
                _check_ca(self.ca_path)
        return self.kafka_bootstrap_servers, client_security(
            self.kafka_user, password, self.ca_path
        )

    def image_for(self, target: Target | str) -> str:
        return {
            Target.LOADER: self.loader_image,
            Target.CONNECTOR: self.consumer_image,
            Target.GRAPH_BUILDER: self.graph_builder_image,
            Target.GNN_TRAINER: self.gnn_trainer_image,
            Target.VISUALIZER: self.visualizer_image,
        }[Target(target)]


#: what the list and mapping settings allow, as their errors say it
_RULES = {
    "allowed_images": "must be images separated by commas, or a JSON list of them",
    "k8s_node_selector": "must be key=value pairs separated by commas, or a JSON object",
    "max_running_jobs": (
        "must be target=limit pairs separated by commas, e.g. gnn-trainer=2,graph-builder=4 "
        f"(targets: {', '.join(t.value for t in Target)}; limits >= 1)"
    ),
    "loader_types": (
        "must be shorthand=type pairs separated by commas, e.g. api=api_candles_1m "
        f"(shorthands: {', '.join(DEFAULT_LOADER_TYPES)}; types like api_candles_5m, ws_trades)"
    ),
    "oidc_role_map": "must be claim=role pairs (role: viewer, operator or admin)",
    "rate_limit_groups": (
        'must be a JSON object of group -> target:type patterns, e.g. {"exchange": '
        '["loader-producer:api_*", "loader-producer:rest_*"]}'
    ),
    "retry_defaults": (
        'must be a JSON object of target -> retry policy, e.g. {"loader-producer": {"limit": 3, '
        '"on": ["rate_limited", "transient"]}}'
    ),
}


def _json(value: str, kind: type, rule: str) -> Any:
    """A list or mapping setting written as JSON (what pydantic-settings would read)."""
    try:
        found = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{rule}; not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(found, kind):
        raise ValueError(rule)
    return found


def _check_ca(path: Path) -> None:
    """CA_PATH names a readable PEM file of CA certificates (the Kafka brokers' TLS)."""
    rule = "must be a readable PEM file of the Kafka brokers' CA certificates"
    try:
        pem = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise Misconfigured(f"CA_PATH: {rule}; cannot read {path}: {exc.strerror}") from None
    try:
        if "-----BEGIN CERTIFICATE-----" not in pem:
            raise ValueError("no certificate in it")
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as exc:
        why = getattr(exc, "reason", None) or exc
        raise Misconfigured(f"CA_PATH: {rule}; {path} is not one ({why})") from None


def _pairs(value: Any, rule: str) -> Any:
    """`a=1,b=2` (or a JSON object) as a dict; anything but a string is left to pydantic."""
    if not isinstance(value, str):
        return value
    if value.lstrip().startswith("{"):
        return _json(value, dict, rule)
    pairs = [part.partition("=") for part in value.split(",") if part.strip()]
    if any(not sep or not key.strip() for key, sep, _ in pairs):
        raise ValueError(rule)
    return {key.strip(): val.strip() for key, _, val in pairs}


def load_settings(**overrides: Any) -> Settings:
    """The settings, or Misconfigured: one line naming each bad variable and what it allows
    (`queue-manager serve` prints it and exits 2)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise Misconfigured(describe_error(exc)) from None
    except SettingsError as exc:  # a value pydantic-settings could not even decode
        found = re.search(r'field "([^"]+)"', str(exc))
        name = found.group(1).upper() if found else "settings"
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise Misconfigured(f"{name}: could not be read{cause}") from None


def describe_error(exc: ValidationError) -> str:
    """One line naming each bad variable, as the operator typed it, and what it allows."""
    return "; ".join(_describe(err) for err in exc.errors(include_url=False))


def _describe(err: Any) -> str:
    field = str(err["loc"][0]) if err["loc"] else ""
    message = str(err["msg"])
    if err["type"] == "value_error":  # our own validators: the message says what is allowed
        message = message.removeprefix("Value error, ")
    elif field in _RULES:
        message = _RULES[field]
    else:
        allowed = _allowed(field)
        message = f"must be {allowed}" if allowed else message.replace("Input should be", "must be")
        value = err.get("input")
        if allowed and isinstance(value, str) and len(value) <= 40:
            message += f" (got {value!r})"
    return f"{field.upper() or 'settings'}: {message}"


def _allowed(field: str) -> str | None:
    """What a scalar setting allows, said from its type and bounds; None for the others (whose
    values are never repeated back: they may be commands or paths)."""
    info = Settings.model_fields.get(field)
    if info is None:
        return None
    kind = info.annotation
    if get_origin(kind) in (Union, UnionType):  # `X | None`: what X allows
        kinds = [k for k in get_args(kind) if k is not type(None)]
        kind = kinds[0] if len(kinds) == 1 else None
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return "one of " + ", ".join(member.value for member in kind)
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(str(arg) for arg in get_args(kind))
    if kind is bool:
        return "true or false"
    if kind not in (int, float):
        return None
    unit = next((u for u in ("seconds", "days") if field.endswith(f"_{u}")), None)
    noun = "an integer" if kind is int else "a number"
    if unit:
        noun = f"{'a whole' if kind is int else 'a'} number of {unit}"
    bounds = {
        key: _number(getattr(rule, key))
        for rule in info.metadata
        for key in ("ge", "gt", "le")
        if isinstance(getattr(rule, key, None), int | float)
    }
    high = f" to {bounds['le']}" if "le" in bounds else ""
    if "ge" in bounds:
        return f"{noun} from {bounds['ge']}{high}" if high else f"{noun} >= {bounds['ge']}"
    if "gt" in bounds:
        return f"{noun} greater than {bounds['gt']}" + (f", up{high}" if high else "")
    return f"{noun} up{high}" if high else noun


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)
