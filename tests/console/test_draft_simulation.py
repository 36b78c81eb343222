"""Simulating a draft from the console: a background job per journey, its progress on a page
that reloads itself, then the funnel, the send hours and a sample timeline."""

from __future__ import annotations

import html
import threading
from typing import Any, cast

import pytest
from console_support import NOW, console_client, log_in
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Mount

from config import Settings
from console.simulations import SimulationJob, SimulationJobs
from journey_support import publish_shipped
from journeys.models import Journey
from journeys.validate import shipped_journey_files
from support import assert_eventually

SOURCE = next(p for p in shipped_journey_files() if p.stem == "new_user_coupon").read_text()
DRAFT = "/console/journeys/new_user_coupon/draft"
SIMULATION = DRAFT + "/simulation"


def client_with_jobs(db, **jobs: Any) -> tuple[TestClient, str]:
    """A logged-in console whose simulations run with ``jobs``' settings (population, runner)."""
    http = console_client(db)
    outer = cast(FastAPI, http.app)
    console = next(r for r in outer.routes if getattr(r, "path", "") == "/console")
    state = cast(Mount, console).app.state  # type: ignore[attr-defined]
    state.simulations = SimulationJobs(state.console.settings, lambda: NOW, **jobs)
    return http, log_in(http)


def when_ended(http: TestClient, timeout: float = 5) -> str:
    """The simulation page once its job is no longer running."""

    def ended() -> str:
        page = http.get(SIMULATION).text
        return "" if 'data-status="running"' in page else page

    return html.unescape(assert_eventually(ended, timeout=timeout, interval=0.2))


def test_a_job_shows_its_progress_then_why_it_failed(db) -> None:
    publish_shipped(db.factory, "new_user_coupon", NOW)
    go_on = threading.Event()
    seen: list[tuple[str, int]] = []

    def runner(settings: Settings, journeys: list[tuple[Journey, str]], job: SimulationJob) -> Any:
        seen.extend((j.id, len(s)) for j, s in journeys)
        job.progress(3, 7, "entering", 12)
        go_on.wait(10)
        raise RuntimeError("the test server went away")

    http, csrf = client_with_jobs(db, runner=runner, days=7)
    assert "No simulation of this journey has run" in http.get(SIMULATION).text

    started = http.post(DRAFT + "/simulate", data={"csrf": csrf})
    assert started.status_code == 303 and started.headers["location"] == SIMULATION
    assert_eventually(lambda: seen, timeout=5)
    assert seen == [("new_user_coupon", len(SOURCE))]  # the live YAML, no draft saved

    page = http.get(SIMULATION).text
    assert '<meta http-equiv="refresh" content="2">' in page
    assert 'value="42"' in page and "day 3 of 7, 12 runs open" in page
    # One job per journey: asking again while it runs shows the same job.
    assert http.post(DRAFT + "/simulate", data={"csrf": csrf}).status_code == 303
    assert len(seen) == 1

    go_on.set()
    failed = when_ended(http)
    assert 'data-status="failed"' in failed
    assert "RuntimeError: the test server went away" in failed
    assert "http-equiv" not in failed


def test_a_draft_with_errors_is_not_simulated(db) -> None:
    publish_shipped(db.factory, "new_user_coupon", NOW)
    http, csrf = client_with_jobs(db, runner=lambda *a: pytest.fail("must not run"))
    broken = SOURCE.replace("template: new_user_reminder_push", "template: nope")
    http.post(DRAFT, data={"csrf": csrf, "yaml": broken})
    refused = http.post(DRAFT + "/simulate", data={"csrf": csrf})
    assert refused.status_code == 400
    assert "Only a journey without errors can be simulated." in refused.text
    assert "unknown template" in refused.text
    assert http.post(
        "/console/journeys/nothing/draft/simulate", data={"csrf": csrf}
    ).status_code == (404)


@pytest.mark.slow
def test_the_draft_is_simulated_to_its_funnel_send_hours_and_a_timeline(db) -> None:
    publish_shipped(db.factory, "new_user_coupon", NOW)
    http, csrf = client_with_jobs(db, users=12, days=1, seed=3)
    edited = SOURCE.replace("name: 7-day new-user coupon", "name: Draft coupon journey")
    http.post(DRAFT, data={"csrf": csrf, "yaml": edited})
    assert http.post(DRAFT + "/simulate", data={"csrf": csrf}).status_code == 303

    page = when_ended(http, timeout=120)
    assert 'data-status="done"' in page, page
    assert "lifecycle simulate: 12 users, 1 days" in page
    assert "Draft coupon journey (new_user_coupon)" in page  # the draft's, not the live one
    assert "entered" in page and "converted" in page
    assert "Sends by the user's local hour" in page
    assert "Timeline of " in page
