"""A worker's log line, read: its time, level, message and the rest of its fields.

Workers write structured lines (one JSON object each, as structlog's JSONRenderer does); a line
that is not one (a traceback, a library's print) is kept as it is, its level unknown, so nothing
a worker wrote is hidden by the parsing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, Field


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {level: n for n, level in enumerate(LogLevel)}
#: what loggers write for a level, beyond its own name
_ALIASES = {"warn": LogLevel.WARNING, "fatal": LogLevel.CRITICAL, "err": LogLevel.ERROR}
_TIME_KEYS = ("timestamp", "time", "ts", "@timestamp", "asctime")
_LEVEL_KEYS = ("level", "levelname", "severity", "lvl")
_MESSAGE_KEYS = ("event", "message", "msg")


class LogLine(BaseModel):
    """One line as GET .../logs?format=json sends it (docs/api.md "Step logs")."""

    time: str | None = None
    #: None: the line said no level we know (a raw line)
    level: LogLevel | None = None
    message: str
    fields: dict[str, Any] = Field(default_factory=dict)
    #: the line as written
    raw: str


def level_of(value: Any) -> LogLevel | None:
    if not isinstance(value, str):
        return None
    word = value.strip().lower()
    try:
        return LogLevel(word)
    except ValueError:
        return _ALIASES.get(word)


def _first(doc: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in doc:
            return doc.pop(key)
    return None


def parse(raw: str) -> LogLine:
    """A line (without its newline) read: a JSON object's time, level and message taken out,
    the rest folded into `fields`; anything else kept whole as the message."""
    text = raw.rstrip("\r")
    try:
        doc = orjson.loads(text) if text.startswith("{") else None
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        return LogLine(message=text, raw=text)
    when = _first(doc, _TIME_KEYS)
    level = level_of(_first(doc, _LEVEL_KEYS))
    message = _first(doc, _MESSAGE_KEYS)
    return LogLine(
        time=str(when) if when is not None else None,
        level=level,
        message=_text(message),
        fields=doc,
        raw=text,
    )


def _text(message: Any) -> str:
    if message is None:
        return ""
    return message if isinstance(message, str) else orjson.dumps(message).decode()


def wanted(line: LogLine, minimum: LogLevel | None, grep: str | None) -> bool:
    """At or above `minimum` — a line of unknown level is kept (a traceback says no level and
    is what an error search is for) — and holding `grep` (any case) in its raw text."""
    if minimum is not None and line.level is not None and line.level.rank < minimum.rank:
        return False
    return grep is None or grep.casefold() in line.raw.casefold()
