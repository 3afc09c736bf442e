"""docs/api.md and the served OpenAPI document describe the same API."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from queue_manager.app import create_app
from queue_manager.settings import Settings
from tests.docs.markdown import ROOT, blocks

API_MD = ROOT / "docs" / "api.md"
_OPERATION = re.compile(r"^### `(GET|POST|PUT|PATCH|DELETE) (/\S*)`", re.MULTILINE)


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("openapi"), _env_file=None)
    document: dict[str, Any] = create_app(settings).openapi()
    return document


def test_every_public_operation_is_documented_and_nothing_else(openapi: dict[str, Any]) -> None:
    served = {
        (method.upper(), path)
        for path, operations in openapi["paths"].items()
        for method in operations
    }
    documented = set(_OPERATION.findall(API_MD.read_text(encoding="utf-8")))
    assert documented == served


def test_the_openapi_examples_are_the_documented_pipelines(openapi: dict[str, Any]) -> None:
    start = openapi["paths"]["/queues/start"]["post"]["requestBody"]["content"]
    examples = start["application/json"]["examples"]
    requests = [
        json.loads(b.text)
        for b in blocks(ROOT / "docs" / "pipelines.md")
        if b.language == "json" and b.tag == "request"
    ]
    for name in ("single", "historical", "realtime"):
        on_disk = json.loads((ROOT / "examples" / f"{name}.json").read_text())
        assert examples[name]["value"] == on_disk, name
    assert examples["historical"]["value"] in requests
    assert examples["realtime"]["value"] in requests


def test_every_documented_example_file_exists() -> None:
    mentioned = set(re.findall(r"examples/\w+\.json", _all_docs()))
    assert mentioned
    assert all((ROOT / name).is_file() for name in mentioned), mentioned


def _all_docs() -> str:
    paths: list[Path] = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    return "\n".join(p.read_text(encoding="utf-8") for p in paths)
