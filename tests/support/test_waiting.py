"""tests/support/waiting.py: the one way the tests wait."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.support.waiting import WaitTimeout, wait_until, wait_until_async


def test_returns_the_first_truthy_value() -> None:
    calls: list[int] = []

    def third_time() -> int | None:
        calls.append(1)
        return len(calls) if len(calls) >= 3 else None

    assert wait_until(third_time, 5, every=0) == 3


def test_the_failure_names_what_was_awaited_and_what_was_reached() -> None:
    with pytest.raises(WaitTimeout) as failure:
        wait_until(lambda: False, 0.05, what="the queue to finish", detail=lambda: "it is loading")
    assert str(failure.value) == (
        "gave up after 0.05 s waiting for the queue to finish; it is loading"
    )


def test_without_a_description_the_failure_quotes_the_condition() -> None:
    box: dict[str, int] = {}
    with pytest.raises(WaitTimeout, match=r"`lambda: box\.get\(\"n\"\) == 1`"):
        wait_until(lambda: box.get("n") == 1, 0.05)


def test_a_timeout_is_both_a_timeout_and_a_test_failure() -> None:
    for caught in (TimeoutError, AssertionError):
        with pytest.raises(caught):
            wait_until(lambda: None, 0)


def test_ignored_errors_mean_not_yet_and_the_last_is_quoted() -> None:
    with pytest.raises(WaitTimeout, match=r"last error: KeyError\('n'\)"):
        wait_until(lambda: {}["n"], 0.05, ignore=(KeyError,))
    with pytest.raises(KeyError):
        wait_until(lambda: {}["n"], 5)  # not ignored: a real failure, at once


def test_a_threading_event() -> None:
    event = threading.Event()
    threading.Timer(0.05, event.set).start()
    assert wait_until(event, 5, what="the event")
    with pytest.raises(WaitTimeout, match="waiting for never set"):
        wait_until(threading.Event(), 0.01, what="never set")


async def test_async_awaits_a_coroutine_condition_and_an_asyncio_event() -> None:
    async def ready() -> str:
        return "yes"

    assert await wait_until_async(ready, 5) == "yes"
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, event.set)
    assert await wait_until_async(event, 5, what="the event")
    with pytest.raises(WaitTimeout, match="waiting for nothing"):
        await wait_until_async(lambda: False, 0.05, what="nothing")


async def test_async_with_wake_checks_again_when_woken_not_on_the_poll() -> None:
    wake = asyncio.Event()
    seen: list[int] = []
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, lambda: (seen.append(1), wake.set()))
    began = loop.time()
    assert await wait_until_async(lambda: seen, 5, every=60, wake=wake) == [1]
    assert loop.time() - began < 5
