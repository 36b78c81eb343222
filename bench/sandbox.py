"""The workers' workflow sandbox against temporalio's stock one, by replaying recorded runs.

Replays the recorded histories of the shipped journeys (``tests/workflows/histories``) with
``Replayer``, each round with one runner: **stock**, temporalio's ``SandboxedWorkflowRunner``
with the workers' pass-through modules, or **ours**, ``worker.sandbox_runner()`` (the same,
with the sandbox's glue code compiled once: ``workflows/sandbox.py``). A replay runs each
run's workflow code and every activation as a worker does, in the sandbox, without a server
or activities, so its CPU time is the sandbox's and the workflow's alone. Bytecode is kept
as the worker keeps it (``worker.keep_bytecode``), so no run compiles the workflow module.

Rounds alternate A B B A (``--cycles`` times); prints each round's CPU seconds, then per side
the CPU milliseconds per replayed run and the ratio ours / stock (below 1 is faster).

    .venv/bin/python bench/sandbox.py
    .venv/bin/python bench/sandbox.py --repeat 40 --cycles 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.client import WorkflowHistory  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.worker import Replayer  # noqa: E402
from temporalio.worker.workflow_sandbox import (  # noqa: E402
    SandboxedWorkflowRunner,
    SandboxRestrictions,
)

from worker import PASSTHROUGH, WORKFLOWS, keep_bytecode, sandbox_runner  # noqa: E402

HISTORIES = ROOT / "tests" / "workflows" / "histories"


def stock() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


RUNNERS = {"stock": stock, "ours": sandbox_runner}


async def replay_round(
    runner: SandboxedWorkflowRunner, histories: list[WorkflowHistory], repeat: int
) -> float:
    """CPU seconds of this process to replay every history ``repeat`` times."""
    replayer = Replayer(
        workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=runner
    )

    async def each() -> AsyncIterator[WorkflowHistory]:
        for _ in range(repeat):
            for history in histories:
                yield history

    began = time.process_time()
    async with replayer.workflow_replay_iterator(each()) as results:
        async for result in results:
            if result.replay_failure is not None:
                raise result.replay_failure
    return time.process_time() - began


async def bench(repeat: int, cycles: int) -> int:
    # As ``lifecycle worker`` does: each run's import of the workflow module reads bytecode.
    keep_bytecode(Path(tempfile.mkdtemp(prefix="bench-sandbox-pycache-")))
    histories = [
        WorkflowHistory.from_json(path.stem, path.read_text())
        for path in sorted(HISTORIES.glob("*.json"))
    ]
    runs = repeat * len(histories)
    print(
        f"sandbox: {len(histories)} recorded histories x {repeat} = {runs} replayed runs per "
        f"round; rounds A B B A x {cycles}"
    )
    for make in RUNNERS.values():  # warm both: imports, caches
        await replay_round(make(), histories, 1)
    seconds: dict[str, list[float]] = {side: [] for side in RUNNERS}
    for number, side in enumerate(["stock", "ours", "ours", "stock"] * cycles, 1):
        took = await replay_round(RUNNERS[side](), histories, repeat)
        seconds[side].append(took)
        print(f"round {number:2d} {side:6s} {took:6.2f} s CPU  {took / runs * 1000:6.2f} ms/run")
    per_run = {side: statistics.mean(v) / runs * 1000 for side, v in seconds.items()}
    print(
        f"stock {per_run['stock']:.2f} ms CPU per replayed run, ours {per_run['ours']:.2f}; "
        f"ratio ours/stock {per_run['ours'] / per_run['stock']:.3f}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sandbox.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=20, help="replays of each history a round")
    parser.add_argument("--cycles", type=int, default=2, help="A B B A cycles (2)")
    args = parser.parse_args(argv)
    return asyncio.run(bench(args.repeat, args.cycles))


if __name__ == "__main__":
    sys.exit(main())
