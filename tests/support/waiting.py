"""The one way tests and benchmarks wait: for a condition or an event, with a deadline, failing
with a message that names what was awaited.

    wait_until(lambda: queue_finished(), 30, what="the queue to finish")
    await wait_until_async(watcher_saw_it, 15, what="job X to succeed", wake=watcher.changed)
    wait_until(done_event, 10, what="the reader to close")        # a threading.Event

A sleep is never a wait: a test waits for the event a sleep would have stood for. Where a test
asserts that something does *not* happen, it waits for a later, positive event that proves the
time passed (a later message on the same ordered stream), then asserts the absence.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: errors a check may raise that mean "not yet" rather than "failed"; none unless a caller says
Ignored = tuple[type[BaseException], ...]


class WaitTimeout(TimeoutError, AssertionError):
    """What was awaited did not happen before the deadline.

    Both a TimeoutError (what the former helpers raised, and callers catch) and an AssertionError
    (a test failure in pytest's report, like the helpers that asserted)."""


def wait_until(
    condition: Callable[[], T | None] | threading.Event,
    within: float,
    *,
    what: str | None = None,
    every: float = 0.05,
    ignore: Ignored = (),
    detail: Callable[[], str] | None = None,
) -> T:
    """Wait until `condition()` returns something truthy and return it, or until a
    threading.Event is set (returns True). Checked at once, then every `every` seconds, and a
    last time at the deadline. An exception in `ignore` counts as "not yet" (the last one is
    quoted on failure); any other propagates. On timeout: WaitTimeout naming `what` (or the
    condition's source) and, if given, `detail()` (the state that was reached instead)."""
    if isinstance(condition, threading.Event):
        if condition.wait(within):
            return True  # type: ignore[return-value]
        raise WaitTimeout(_message(what, condition, within, None, detail))
    deadline = time.monotonic() + within
    last: BaseException | None = None
    while True:
        try:
            result = condition()
        except ignore as exc:
            last = exc
        else:
            if result:
                return result
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(_message(what, condition, within, last, detail))
        time.sleep(min(every, left))


async def wait_until_async(
    condition: Callable[[], T | Awaitable[T | None] | None] | asyncio.Event,
    within: float,
    *,
    what: str | None = None,
    every: float = 0.05,
    ignore: Ignored = (),
    detail: Callable[[], str] | None = None,
    wake: asyncio.Event | None = None,
) -> T:
    """`wait_until` for a coroutine: `condition()` may be a coroutine function, or an
    asyncio.Event. With `wake`, the condition is checked again each time `wake` is set (and
    every `every` seconds anyway) rather than only every `every` seconds."""
    if isinstance(condition, asyncio.Event):
        try:
            await asyncio.wait_for(condition.wait(), within)
        except TimeoutError:
            raise WaitTimeout(_message(what, condition, within, None, detail)) from None
        return True  # type: ignore[return-value]
    deadline = time.monotonic() + within
    last: BaseException | None = None
    while True:
        if wake is not None:
            wake.clear()  # before the check: a change during it wakes the next wait
        try:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
        except ignore as exc:
            last = exc
        else:
            if result:
                return result  # type: ignore[return-value]
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(_message(what, condition, within, last, detail))
        if wake is None:
            await asyncio.sleep(min(every, left))
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(every, left))


def _message(
    what: str | None,
    condition: object,
    within: float,
    last: BaseException | None,
    detail: Callable[[], str] | None,
) -> str:
    text = f"gave up after {within:g} s waiting for {what or describe(condition)}"
    if last is not None:
        text += f" (last error: {last!r})"
    if detail is not None:
        try:
            text += f"; {detail()}"
        except Exception as exc:  # the detail is a courtesy: never hide the timeout behind it
            text += f"; (detail failed: {exc!r})"
    return text


def describe(condition: Any) -> str:
    """What a condition is, for a message: its source if it is a lambda, else its name."""
    if isinstance(condition, threading.Event | asyncio.Event):
        return "an event to be set"
    name = getattr(condition, "__qualname__", None)
    if name is None:
        return repr(condition)
    if name.endswith("<lambda>"):
        try:
            source = " ".join(inspect.getsource(condition).split())
        except (OSError, TypeError):
            return "a condition (a lambda)"
        start = source.find("lambda")
        text = _expression(source[start:]) if start >= 0 else source
        return f"`{text[:200]}`"
    return f"{name}()"


def _expression(text: str) -> str:
    """`text` up to the end of the expression it begins with: the first `,` or closing bracket
    outside brackets and strings (the lambda of `wait_until(lambda: ..., 10)`)."""
    depth = 0
    quote = ""
    for i, char in enumerate(text):
        if quote:
            if char == quote and text[i - 1] != "\\":
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                return text[:i].strip()
            depth -= 1
        elif char == "," and depth == 0:
            return text[:i].strip()
    return text.strip()
