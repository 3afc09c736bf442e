"""Reading the repository's Markdown: fenced blocks with their tags, links, heading anchors.

A fence's info string is `<language> <tag>`: `sh run` blocks are run by tests/docs, a
`json output` block right after one is what it must print, a `json request` block is a body
`POST /queues/start` must accept. GitHub renders all of them by their language alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```(\S*)\s*(\S*)\s*$")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"^<([^<>]*)>$")
_PART = re.compile(r"<[^<>]+>")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    tag: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        found.append(Block(path, start + 1, match[1], match[2], "\n".join(body) + "\n"))
        i += 1
    return found


def runnable(path: Path) -> list[tuple[Block, Block | None]]:
    """Each `sh run` block with the `json output` block that follows it, if any."""
    all_blocks = blocks(path)
    pairs = []
    for i, block in enumerate(all_blocks):
        if block.language == "sh" and block.tag == "run":
            after = all_blocks[i + 1] if i + 1 < len(all_blocks) else None
            output = after if after is not None and after.tag == "output" else None
            pairs.append((block, output))
    return pairs


def links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    # Code spans and blocks are not links.
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    return _LINK.findall(text)


def anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lower-case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    found = set()
    for heading in _HEADING.findall(text):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).replace(" ", "-")
        found.add(slug)
    return found


def mismatches(documented: Any, actual: Any, where: str = "$") -> list[str]:
    """Where `actual` differs from a documented example.

    A documented string `<...>` stands for any value (ids, times, counts that vary); `<a|b|c>`
    (no spaces) for one of those values; `<...>` inside a string for any text there
    (`"<queue id>.api"`). Everything else must be equal, and objects must have
    exactly the documented keys, so a renamed, added or removed field is a difference.
    """
    if isinstance(documented, str) and (match := _PLACEHOLDER.match(documented)):
        choices = match[1]
        if "|" in choices and " " not in choices and actual not in choices.split("|"):
            return [f"{where}: {actual!r} is not one of {choices}"]
        return []
    if isinstance(documented, str) and _PART.search(documented):
        pattern = ".+?".join(re.escape(part) for part in _PART.split(documented))
        if isinstance(actual, str) and re.fullmatch(pattern, actual):
            return []
        return [f"{where}: {actual!r} does not have the form {documented!r}"]
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        problems = [f"{where}.{k}: missing" for k in documented if k not in actual]
        problems += [f"{where}.{k}: not documented" for k in actual if k not in documented]
        for key in documented.keys() & actual.keys():
            problems += mismatches(documented[key], actual[key], f"{where}.{key}")
        return problems
    if isinstance(documented, list):
        if not isinstance(actual, list) or len(actual) != len(documented):
            return [f"{where}: expected {len(documented)} items, got {actual!r}"]
        problems = []
        for i, (doc, act) in enumerate(zip(documented, actual, strict=True)):
            problems += mismatches(doc, act, f"{where}[{i}]")
        return problems
    return [] if documented == actual else [f"{where}: documented {documented!r}, got {actual!r}"]
