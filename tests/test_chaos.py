"""The worker SIGKILLed at random moments: no step reaches the provider twice, none is lost.

A small run of ``bench/chaos_kill_worker.py``: the real Temporal dev server, a SQLite file,
the Twilio stand-in on 127.0.0.1 and ``python -m cli worker`` as a process killed 5 times.
It takes 1–1.5 minutes: an activity that died with a killed worker is retried only once its
start-to-close timeout (60 s) expires.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from bench.chaos_kill_worker import ChaosOptions, print_report, run_chaos


def test_killed_worker_sends_each_step_at_most_once_and_loses_none(tmp_path: Path):
    lines: list[str] = []
    report = run_chaos(
        ChaosOptions(
            users=20,
            kills=5,
            seed=20240601,
            wait="1s",
            # Soon after the worker reaches the provider: with 20 users a burst of sends is
            # over in a few hundred milliseconds.
            min_gap=0.05,
            max_gap=0.5,
            drain_timeout=240,
            workdir=tmp_path,
        ),
        say=lines.append,
    )
    print_report(report, lines.append)
    printed = "\n".join(lines)
    print(printed)  # shown with -s, or when an assertion fails

    assert len(report.kills) == 5, printed
    assert report.enrollments == 20 and report.exited == 20, printed
    assert report.missing == [], printed
    assert report.unattributed == [], printed
    assert report.coupon_duplicates == 0, printed
    assert report.workflows == {"completed": 20}, printed
    # Every step is sent (nothing in this journey has a reason to skip) and each sent row
    # has exactly the provider requests the table shows.
    assert report.sent == report.expected_sends == 60, printed
    # The one window that remains (provider accepted, worker died before the ledger update)
    # may produce a duplicate; anything else may not.
    unexplained = [d for d in report.duplicates if not d.crash_window]
    assert unexplained == [], printed
    assert report.provider_requests == report.sent + report.duplicate_requests, printed
    # Counted by `To` alone (no attribution): only the users with a duplicate are off.
    assert report.to_mismatches == len({d.outcome.user_id for d in report.duplicates}), printed
    if report.duplicates:
        found = [line for line in lines if line.lstrip().startswith(("DUPLICATE", "users "))]
        warnings.warn(
            f"{len(report.duplicates)} step(s) reached the provider twice through the crash "
            "window (provider accepted, worker killed before the ledger update):\n"
            + "\n".join(found),
            stacklevel=1,
        )
