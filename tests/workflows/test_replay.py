"""Recorded histories of the shipped journeys still replay: the interpreter stays
deterministic for runs already in flight."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS, sandbox_runner

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_shipped_journey_has_recorded_histories():
    from journeys.validate import shipped_journey_files

    recorded = {p.stem for p in HISTORIES}
    for journey in shipped_journey_files():
        assert any(name.startswith(journey.stem) for name in recorded), "run `make histories`"


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )
    await replayer.replay_workflow(history)
