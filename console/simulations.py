"""Simulating a journey's draft from the console: a background job per journey.

A job runs ``lifecycle simulate``'s own simulation (:func:`simulate.runner.run_simulation`:
the real engine on the time-skipping server, a private SQLite file, every channel on the
outbox) in a thread of the process that serves the console, with a small population, and
keeps its progress (per simulated day), then its result as the command prints it: the
funnel, the send-hour histogram and a sample timeline. Jobs live in memory, in that process:
a restart forgets them, and another API process does not see them.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from config import Settings
from journeys.models import Journey

if TYPE_CHECKING:
    from simulate.results import SimulationResult

log = logging.getLogger(__name__)

# Big enough for a funnel worth reading, small enough to take a minute or two.
USERS, DAYS, SEED = 300, 7, 7


@dataclass
class SimulationJob:
    """One journey's simulation: ``running``, then ``done`` (with ``result`` and ``text``)
    or ``failed`` (with ``error``)."""

    journey_id: str
    users: int
    days: int
    seed: int
    started_at: datetime
    status: str = "running"
    day: int = 0
    phase: str = "starting"
    open_runs: int = 0
    finished_at: datetime | None = None
    result: SimulationResult | None = None
    text: str = ""
    error: str = ""

    @property
    def percent(self) -> int:
        """How far it is: days entered out of ``days``; open runs finishing after that count
        as the last percent, since how long they take is not known beforehand."""
        if self.status != "running":
            return 100
        if self.phase == "finishing":
            return 99
        return min(99, self.day * 100 // max(self.days, 1))

    def progress(self, day: int, days: int, phase: str, running: int) -> None:
        """The simulation's day-by-day callback."""
        self.day, self.phase, self.open_runs = day, phase, running


# Runs a job to its end: (settings, [(journey, source)], job) -> the result.
Runner = Callable[[Settings, list[tuple[Journey, str]], SimulationJob], "SimulationResult"]


def run_with_simulator(
    settings: Settings, journeys: list[tuple[Journey, str]], job: SimulationJob
) -> SimulationResult:
    """Run ``lifecycle simulate``'s simulation on its own event loop, reporting to ``job``."""
    # Imported here: the simulator builds the API app, which mounts this console.
    from simulate.behaviour import Behaviour
    from simulate.runner import run_simulation

    return asyncio.run(
        run_simulation(
            settings,
            journeys,
            users=job.users,
            days=job.days,
            seed=job.seed,
            behaviour=Behaviour(),
            progress=job.progress,
        )
    )


def result_text(result: SimulationResult) -> str:
    """The result as ``lifecycle simulate`` prints it, without colours."""
    from rich.console import Console

    from simulate.view import print_result

    out = io.StringIO()
    print_result(result, Console(file=out, width=120, color_system=None, highlight=False))
    return out.getvalue()


@dataclass
class SimulationJobs:
    """The simulations of this process, at most one running per journey."""

    settings: Settings
    now: Callable[[], datetime]
    users: int = USERS
    days: int = DAYS
    seed: int = SEED
    runner: Runner = run_with_simulator
    _jobs: dict[str, SimulationJob] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, journey_id: str) -> SimulationJob | None:
        return self._jobs.get(journey_id)

    def start(self, journey: Journey, source: str) -> tuple[SimulationJob, bool]:
        """Start simulating ``journey`` in a thread; the job, and False when one of this
        journey was running already (it is the one returned)."""
        with self._lock:
            running = self._jobs.get(journey.id)
            if running is not None and running.status == "running":
                return running, False
            job = SimulationJob(journey.id, self.users, self.days, self.seed, self.now())
            self._jobs[journey.id] = job
        thread = threading.Thread(
            target=self._run,
            args=(job, [(journey, source)]),
            name=f"simulate-{journey.id}",
            daemon=True,
        )
        thread.start()
        return job, True

    def _run(self, job: SimulationJob, journeys: list[tuple[Journey, str]]) -> None:
        try:
            result = self.runner(self.settings, journeys, job)
            job.text = result_text(result)
            job.result = result
            job.status = "done"
        except Exception as exc:  # the page shows it; the process goes on
            log.exception("console: simulating %s failed", job.journey_id)
            job.error = f"{type(exc).__name__}: {exc}"
            job.status = "failed"
        finally:
            job.finished_at = self.now()


_MAKING = threading.Lock()


def jobs_of(state: Any, settings: Settings, now: Callable[[], datetime]) -> SimulationJobs:
    """The app's job registry (kept on ``app.state``), made on first use."""
    with _MAKING:
        jobs: SimulationJobs | None = getattr(state, "simulations", None)
        if jobs is None:
            jobs = state.simulations = SimulationJobs(settings, now)
        return jobs
