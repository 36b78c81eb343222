"""The wait every polling test uses: it returns what came true, and a wait that never ends
fails naming what it waited for and what it last saw."""

from __future__ import annotations

import itertools
import subprocess
import time

import pytest

from support import assert_eventually, assert_eventually_async, fail_if_exited


def test_returns_the_first_true_value() -> None:
    tries = itertools.count()
    assert assert_eventually(lambda: next(tries) >= 3 and "ready", timeout=5, interval=0) == "ready"


def test_a_failed_assertion_means_not_yet() -> None:
    tries = itertools.count()

    def check() -> int:
        n = next(tries)
        assert n >= 2, f"only {n}"
        return n

    assert assert_eventually(check, timeout=5, interval=0) == 2


def test_times_out_naming_the_wait_and_the_last_value() -> None:
    queue: list[int] = []
    with pytest.raises(
        AssertionError, match=r"a message queued: not true within 0.2 s \(last value: \[\]\)"
    ):
        assert_eventually(lambda: queue, timeout=0.2, message="a message queued")


def test_times_out_naming_the_last_error() -> None:
    def check() -> None:
        raise AssertionError("3 rows pending")

    with pytest.raises(AssertionError, match="last error: AssertionError\\('3 rows pending'\\)"):
        assert_eventually(check, timeout=0.1)


def test_other_errors_propagate_unless_named() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError

    with pytest.raises(ConnectionRefusedError):
        assert_eventually(refused, timeout=5)
    with pytest.raises(AssertionError, match="ConnectionRefusedError"):
        assert_eventually(refused, timeout=0.1, retry_on=(ConnectionRefusedError,))


async def test_the_async_twin_awaits_coroutines_and_plain_functions() -> None:
    tries = itertools.count()

    async def rows() -> list[int]:
        return list(range(next(tries)))

    assert await assert_eventually_async(rows, timeout=5, interval=0) == [0]
    assert await assert_eventually_async(lambda: 7, timeout=5) == 7
    with pytest.raises(AssertionError, match="rows: not true within"):
        await assert_eventually_async(lambda: [], timeout=0.1, message="rows")


def test_a_process_that_exited_fails_the_wait_at_once() -> None:
    process = subprocess.Popen(["true"])  # noqa: S607
    process.wait()

    def listening() -> bool:
        fail_if_exited(process, lambda: "its log")
        return False

    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="exited with code 0\nits log"):
        assert_eventually(listening, timeout=30)
    assert time.monotonic() - started < 5
