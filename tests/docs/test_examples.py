"""Every runnable example of the README and docs, run as written against a served instance.

`sh run` blocks run in bash (`set -euo pipefail`) from the repository root, one document's blocks
in order, with the shell variables a block assigns carried to the next; `localhost:8000` is
the instance the test serves. A `json output` block after one is compared with what it printed
(`tests/docs/markdown.py` says how), so an example that drifts from the API fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_manager.domain.identity import new_token, token_hash
from tests.docs.markdown import DOCUMENTS, ROOT, Block, blocks, mismatches, runnable
from tests.support.service import Service

WITH_EXAMPLES = [p for p in DOCUMENTS if runnable(p)]
BLOCK_TIMEOUT = 90
_ASSIGNED = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=", re.MULTILINE)


#: documents whose examples run with auth on, as the bootstrap admin of AUTH_TOKENS_FILE
SECURED = {ROOT / "docs" / "security.md"}
EXAMPLE_ENV = {"LOCAL_WORKER_ARGS": "--duration 1", "STOP_GRACE_SECONDS": "2"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(tmp_path_factory.mktemp("docs") / "svc", env=EXAMPLE_ENV).start()
    yield service
    service.stop()
    service.kill_workers()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    home = tmp_path_factory.mktemp("docs-secured")
    admin = new_token()
    (home / "tokens").write_text(f"bootstrap admin {token_hash(admin)}\n")
    env = {**EXAMPLE_ENV, "AUTH_TOKENS_FILE": str(home / "tokens")}
    service = Service(home / "svc", env=env, token=admin).start()
    yield service, admin
    service.stop()
    service.kill_workers()


class Shell:
    """Runs one document's blocks in order, each in its own bash, sharing assigned variables."""

    def __init__(self, service: Service, state: Path, token: str | None = None) -> None:
        self.service = service
        self.state = state
        state.write_text("")
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "QM_API_URL": service.url,
            "NO_COLOR": "1",
            "COLUMNS": "120",
        }
        self.env.pop("QUEUE_MANAGER_TOKEN", None)
        if token is not None:
            self.env["QUEUE_MANAGER_TOKEN"] = token

    def run(self, block: Block) -> str:
        address = f"127.0.0.1:{self.service.port}"
        text = block.text.replace("localhost:8000", address).replace("127.0.0.1:8000", address)
        keep = sorted(set(_ASSIGNED.findall(text)))
        script = "\n".join(
            [
                "set -euo pipefail",
                f"source {shlex.quote(str(self.state))}",
                text,
                *(f"declare -p {name} >> {shlex.quote(str(self.state))}" for name in keep),
            ]
        )
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-c", script],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, (
            f"{block.where} exited {done.returncode}:\n{done.stderr[-2000:]}\n"
            f"service log:\n{self.service.log_tail()}"
        )
        return done.stdout


@pytest.mark.parametrize("path", WITH_EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_runnable_examples_print_what_the_document_says(
    path: Path, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if path in SECURED:
        service, token = request.getfixturevalue("secured")
        shell = Shell(service, tmp_path / "variables.sh", token)
    else:
        shell = Shell(request.getfixturevalue("served"), tmp_path / "variables.sh")
    for block, output in runnable(path):
        printed = shell.run(block)
        if output is None:
            continue
        documented = json.loads(output.text)
        try:
            actual = json.loads(printed)
        except json.JSONDecodeError:
            pytest.fail(f"{block.where} printed no single JSON document:\n{printed[:2000]}")
        problems = mismatches(documented, actual)
        assert problems == [], f"{output.where} drifted from the API:\n" + "\n".join(problems)


def test_every_documented_request_body_is_accepted(served: Service) -> None:
    bodies = [
        block
        for path in DOCUMENTS
        for block in blocks(path)
        if block.language == "json" and block.tag == "request"
    ]
    assert len(bodies) >= 3
    for block in bodies:
        answer = served.post("/queues/start", json=json.loads(block.text))
        assert answer.status_code == 200, f"{block.where}: {answer.text}"
        assert answer.json()["message"] == "Queue started"


def test_a_drifted_example_is_caught(served: Service) -> None:
    """The comparison is strict enough to notice a renamed field or a changed message."""
    answer = served.get("/queues?limit=1").json()
    documented = {**answer, "message": "Queues"}
    assert mismatches(documented, answer) == [
        "$.message: documented 'Queues', got 'Queues fetched'"
    ]
    renamed = {k if k != "next_cursor" else "cursor": v for k, v in answer.items()}
    assert sorted(mismatches(renamed, answer)) == [
        "$.cursor: missing",
        "$.next_cursor: not documented",
    ]
    assert mismatches({"status": "<pending|loading>"}, {"status": "error"}) != []
    assert mismatches({"status": "<queue id>"}, {"status": "anything"}) == []
    assert mismatches("<queue id>.api", "abc.api") == []
    assert mismatches("<queue id>.api", "abc.ws") != []
