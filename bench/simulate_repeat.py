"""Run the same `lifecycle simulate` N times, one after another, and count the failures.

    .venv/bin/python bench/simulate_repeat.py            # 20 runs
    .venv/bin/python bench/simulate_repeat.py --runs 5

The command is the one a marketer's pre-launch check runs: ``new_user_coupon`` for 600 users
over 7 days, seed 4, with a behaviour of ``lift: {factor: 4.0, days: 2}``. Each run is a
subprocess; its wall time and exit code are printed as it ends, with the last line of what it
wrote to stderr when it failed; at the end, ``failures: K of N`` and the median and maximum
time. Exit status is 1 if any run failed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEHAVIOUR = "lift: {factor: 4.0, days: 2}\n"
ARGS = ["journeys/new_user_coupon.yaml", "--users", "600", "--days", "7", "--seed", "4"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="how many runs (default 20)")
    args = parser.parse_args()
    lifecycle = Path(sys.executable).parent / "lifecycle"
    times: list[float] = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="simulate-repeat-") as folder:
        behaviour = Path(folder) / "behaviour.yaml"
        behaviour.write_text(BEHAVIOUR)
        command = [str(lifecycle), "simulate", *ARGS, "--behaviour", str(behaviour)]
        print(" ".join(command[1:]), flush=True)
        for run in range(1, args.runs + 1):
            began = time.monotonic()
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)  # noqa: S603
            seconds = time.monotonic() - began
            times.append(seconds)
            line = f"run {run:>3}: {seconds:6.1f} s  exit {done.returncode}"
            if done.returncode != 0:
                failures += 1
                lines = done.stderr.strip().splitlines() or ["(nothing on stderr)"]
                line += f"  {lines[-1][:300]}"
            print(line, flush=True)
    print(f"failures: {failures} of {args.runs}")
    print(f"time: median {statistics.median(times):.1f} s, max {max(times):.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
