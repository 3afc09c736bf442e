"""A missing or malformed setting is one line naming the variable and what it allows
(docs/operations.md#configuration); `queue-manager serve` prints it and exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_manager.domain.errors import Misconfigured
from queue_manager.settings import Settings, load_settings


def refused(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(Misconfigured) as caught:
        load_settings(_env_file=None)
    line = str(caught.value)
    assert "\n" not in line
    return line


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"PORT": "http"}, "PORT: must be an integer from 0 to 65535 (got 'http')"),
        (
            {"STOP_GRACE_SECONDS": "30s"},
            "STOP_GRACE_SECONDS: must be a number of seconds from 0 to 86400 (got '30s')",
        ),
        (
            {"AUTH_SESSION_SECONDS": "1"},
            "AUTH_SESSION_SECONDS: must be a whole number of seconds from 60 to 2592000 (got '1')",
        ),
        ({"MAX_RUNNING_QUEUES": "0"}, "MAX_RUNNING_QUEUES: must be an integer >= 1 (got '0')"),
        (
            {"WS_FLUSH_SECONDS": "2"},
            "WS_FLUSH_SECONDS: must be a number of seconds greater than 0, up to 1 (got '2')",
        ),
        (
            {"STORE_BACKEND": "mongo"},
            "STORE_BACKEND: must be one of auto, sqlite, arango (got 'mongo')",
        ),
        (
            {"K8S_IMAGE_PULL_POLICY": "Sometimes"},
            "K8S_IMAGE_PULL_POLICY: must be one of Always, IfNotPresent, Never (got 'Sometimes')",
        ),
        ({"METRICS_AUTH": "maybe"}, "METRICS_AUTH: must be true or false (got 'maybe')"),
        (
            {"ALLOWED_IMAGES": '["a:1",'},
            "ALLOWED_IMAGES: must be images separated by commas, or a JSON list of them; not "
            "valid JSON (Expecting value at character 7)",
        ),
        (
            {"K8S_NODE_SELECTOR": '{"zone": 1}'},
            "K8S_NODE_SELECTOR: must be key=value pairs separated by commas, or a JSON object",
        ),
    ],
)
def test_one_line_names_the_variable_and_what_it_allows(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], line: str
) -> None:
    assert refused(monkeypatch, **env) == line


def test_every_bad_variable_is_named_on_the_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    line = refused(monkeypatch, PORT="-1", LOG_LEVEL="loud")
    assert line.startswith("PORT: must be an integer from 0 to 65535")
    assert "; LOG_LEVEL: must be DEBUG, INFO, WARNING, ERROR or CRITICAL" in line


def test_a_command_line_is_never_repeated_back(monkeypatch: pytest.MonkeyPatch) -> None:
    line = refused(monkeypatch, LOCAL_WORKER_COMMAND="worker --token 's3cret")
    assert line.startswith("LOCAL_WORKER_COMMAND: must be a shell-quoted command line")
    assert "s3cret" not in line


def test_list_and_mapping_settings_may_be_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_IMAGES", '["registry.example/loader:1.2", "r.example/g:1"]')
    monkeypatch.setenv("K8S_NODE_SELECTOR", '{"disktype": "ssd"}')
    monkeypatch.setenv("MAX_RUNNING_JOBS", '{"gnn-trainer": 2}')
    settings = Settings(_env_file=None)
    assert settings.allowed_images == ["registry.example/loader:1.2", "r.example/g:1"]
    assert settings.k8s_node_selector == {"disktype": "ssd"}
    assert settings.max_running_jobs == {"gnn-trainer": 2}


def test_an_empty_arango_url_is_unset_and_a_bad_one_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARANGO_URL", "")
    assert Settings(_env_file=None).arango_url is None
    monkeypatch.setenv("ARANGO_URL", "http://arango-a:8529,http://arango-b:8529")
    assert Settings(_env_file=None).resolved_store == "arango"
    assert refused(monkeypatch, ARANGO_URL="arangodb:8529").startswith(
        "ARANGO_URL: must be the ArangoDB URL"
    )


def test_kafka_credentials_are_checked_when_kafka_is_used(tmp_path: Path) -> None:
    def connection(**values: str) -> str:
        settings = Settings(_env_file=None, kafka_bootstrap_servers="k:9092", **values)  # type: ignore[arg-type]
        with pytest.raises(Misconfigured) as caught:
            settings.kafka_connection()
        return str(caught.value)

    assert connection(kafka_user="qm").startswith("KAFKA_PASSWORD: required when KAFKA_USER")
    missing = connection(kafka_user="qm", kafka_password="pw", ca_path=str(tmp_path / "ca.pem"))
    assert missing.startswith("CA_PATH: must be a readable PEM file")
    (tmp_path / "ca.pem").write_text("no certificate\n")
    garbage = connection(kafka_user="qm", kafka_password="pw", ca_path=str(tmp_path / "ca.pem"))
    assert "is not one (no certificate in it)" in garbage
