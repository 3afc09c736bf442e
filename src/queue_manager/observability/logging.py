"""structlog set-up: JSON in production, readable in a terminal, secrets never rendered.

Secrets are kept out two ways: our own events never carry a value under a secret-sounding key,
and what other libraries log (uvicorn's request lines, HTTP clients' URLs) is scrubbed of
everything a client chose: every query-string value, and anything shaped like a credential.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|authorization|credential", re.I)


#: an API token (`qm_` + 43 URL-safe characters), a JWT (`eyJ…` header and payload), or what
#: follows a `Bearer` scheme, wherever it appears
_CREDENTIAL = re.compile(
    r"qm_[A-Za-z0-9_-]{32,}|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
    r"|(?<=Bearer )[^\s\"',]+|(?<=Bearer%20)[^\s\"'&,]+",
    re.I,
)
#: a URL's query string, up to the end of the URL (space, quote) or its fragment
_QUERY = re.compile(r"\?([^\s\"'#]+)")
#: a query parameter name kept in the log; any other (a bare value, an odd name) is `***` too
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,39}")
MASK = "***"


def _mask_query(match: re.Match[str]) -> str:
    """`?a=1&token=qm_…&x` → `?a=***&token=***&***`: names stay, every value goes."""
    kept = []
    for part in re.split(r"[&;]", match[1]):
        name, has_value, _ = part.partition("=")
        if has_value and _PARAM_NAME.fullmatch(name) and not _CREDENTIAL.search(name):
            kept.append(f"{name}={MASK}")
        elif part:
            kept.append(MASK)
    return "?" + "&".join(kept)


def scrub(text: str) -> str:
    """A line another library wrote, without the query values and credentials it held."""
    if "?" in text:
        text = _QUERY.sub(_mask_query, text)
    return _CREDENTIAL.sub(MASK, text)


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key):
            event[key] = MASK
        elif isinstance(value, str) and _CREDENTIAL.search(value):
            event[key] = _CREDENTIAL.sub(MASK, value)
    return event


class _ScrubForeign(logging.Filter):
    """Every stdlib record (uvicorn's access and WebSocket lines, aiokafka, httpx…) leaves with
    its query values and anything credential-shaped masked, whatever a client sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # logging reports the bad format itself, without our help
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


class _OneLineMisconfiguration(logging.Filter):
    """uvicorn reports a failed start-up with the whole traceback; a misconfiguration is the
    operator's to fix, so only its one line is kept."""

    MARKER = "queue_manager.domain.errors.Misconfigured: "

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.MARKER in message:
            record.msg = "cannot start: " + message.rsplit(self.MARKER, 1)[1].strip()
            record.args = ()
        return True


def configure(level: str = "INFO", fmt: str = "auto") -> None:
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries (uvicorn, aiokafka) log through stdlib logging: same format, same stream.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=shared)
    )
    handler.addFilter(_ScrubForeign())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").addFilter(_OneLineMisconfiguration())
