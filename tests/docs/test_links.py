"""The README and docs stand alone: every relative link reaches a file of this repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.docs.markdown import DOCUMENTS, ROOT, anchors, links


def test_every_user_document_exists() -> None:
    names = {p.name for p in DOCUMENTS}
    assert {"README.md", "api.md", "worker-protocol.md", "pipelines.md", "operations.md"} <= names
    assert "architecture.md" in names


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(path: Path) -> None:
    broken = []
    for target in links(path):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    assert broken == [], f"{path.name}: {broken}"


def test_nothing_points_outside_the_repository() -> None:
    found = subprocess.run(
        ["grep", "-rn", "../shared", "README.md", "docs", "src"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.stdout == ""
