"""Helpers every tier of the suite shares: waiting on a condition instead of sleeping.

A test that waits for something another process or task does (a worker sends, a server
starts listening, a ledger row settles) asks for it by predicate with a deadline, so it is as
quick as the machine allows and, when the thing never happens, fails saying what it waited for
and what it last saw.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import pytest

T = TypeVar("T")

__all__ = ["assert_eventually", "assert_eventually_async", "fail_if_exited"]


class _Attempts:
    """What the predicate gave on its last try, and the deadline it races."""

    def __init__(self, predicate: object, timeout: float, message: str | None) -> None:
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.what = message or getattr(predicate, "__qualname__", repr(predicate))
        self.last: object = None
        self.error: BaseException | None = None

    def settled(self, value: object) -> bool:
        self.last, self.error = value, None
        return bool(value)

    def failed(self, error: BaseException) -> None:
        self.last, self.error = None, error

    def pause(self, interval: float) -> float:
        """Seconds to sleep before the next try; raises once the deadline has passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            seen = f"last error: {self.error!r}" if self.error else f"last value: {self.last!r}"
            raise AssertionError(
                f"{self.what}: not true within {self.timeout:g} s ({seen})"
            ) from self.error
        return min(interval, left)


def assert_eventually(
    predicate: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.05,
    message: str | None = None,
    retry_on: tuple[type[Exception], ...] = (),
) -> T:
    """Call ``predicate`` until it returns something true, and return that.

    Args:
        predicate: Returns a truthy value when the wait is over; it may also raise
            ``AssertionError`` (or one of ``retry_on``) to mean "not yet".
        timeout: Seconds of real time to wait before failing.
        interval: Seconds between tries.
        message: What is waited for, named in the failure (default: the predicate's name).
        retry_on: Further exception types meaning "not yet", e.g. a connection refused by a
            server that is still starting.

    Raises:
        AssertionError: The predicate was never true within ``timeout``; the message names
            what was waited for and the last value or error seen.
    """
    attempts = _Attempts(predicate, timeout, message)
    not_yet: tuple[type[Exception], ...] = (AssertionError, *retry_on)
    while True:
        try:
            if attempts.settled(value := predicate()):
                return value
        except not_yet as error:
            attempts.failed(error)
        time.sleep(attempts.pause(interval))


@overload
async def assert_eventually_async(
    predicate: Callable[[], Awaitable[T]],
    *,
    timeout: float,
    interval: float = ...,
    message: str | None = ...,
    retry_on: tuple[type[Exception], ...] = ...,
) -> T: ...


@overload
async def assert_eventually_async(
    predicate: Callable[[], T],
    *,
    timeout: float,
    interval: float = ...,
    message: str | None = ...,
    retry_on: tuple[type[Exception], ...] = ...,
) -> T: ...


async def assert_eventually_async(
    predicate: Callable[[], object],
    *,
    timeout: float,
    interval: float = 0.05,
    message: str | None = None,
    retry_on: tuple[type[Exception], ...] = (),
) -> object:
    """The twin of :func:`assert_eventually` for asyncio tests: ``predicate`` may be a plain
    function or a coroutine function, and the event loop runs while it waits (the worker of
    the test sends in the meantime). Time-skipping servers do not skip while nobody waits on a
    result, so this waits in real time."""
    attempts = _Attempts(predicate, timeout, message)
    not_yet: tuple[type[Exception], ...] = (AssertionError, *retry_on)
    while True:
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if attempts.settled(value):
                return value
        except not_yet as error:
            attempts.failed(error)
        await asyncio.sleep(attempts.pause(interval))


def fail_if_exited(process: subprocess.Popen[Any], detail: Callable[[], str] = str) -> None:
    """For a predicate waiting on a child process: fails the test at once when the process
    has exited (an ``AssertionError`` would only mean "not yet"), with ``detail()`` (its log,
    say) in the message."""
    if process.poll() is not None:
        pytest.fail(f"{process.args!r} exited with code {process.returncode}\n{detail()}")
