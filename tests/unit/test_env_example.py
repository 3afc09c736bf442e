"""`.env.example` names every setting of the settings model (docs/operations.md), so the file an
operator copies cannot drift from the variables the service reads."""

from __future__ import annotations

import re
from pathlib import Path

from queue_manager.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
# A commented-out assignment such as `# KUBE_QPS=20   # why`.
_ASSIGNMENT = re.compile(r"^#\s*([A-Z][A-Z0-9_]*)=(.*)$")


def _documented() -> dict[str, str]:
    """Each variable in the file, with the text that explains it (its trailing comment or the
    section heading above it)."""
    documented: dict[str, str] = {}
    heading = ""
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("# ---"):
            heading = line
        match = _ASSIGNMENT.match(line)
        if match:
            _, _, comment = match.group(2).partition("#")
            documented[match.group(1)] = comment.strip() or heading
    return documented


def test_every_setting_appears_in_env_example() -> None:
    documented = _documented()
    missing = sorted(
        name.upper() for name in Settings.model_fields if name.upper() not in documented
    )
    assert not missing, f".env.example lacks {', '.join(missing)}"


def test_env_example_names_only_real_settings() -> None:
    known = {name.upper() for name in Settings.model_fields}
    unknown = sorted(set(_documented()) - known)
    assert not unknown, f".env.example names variables the service never reads: {unknown}"


def test_every_variable_in_env_example_is_explained() -> None:
    unexplained = sorted(name for name, text in _documented().items() if not text)
    assert not unexplained, f"no comment or section heading for {unexplained}"
