"""The Growth page never holds a request for the whole KPI computation: a report is computed
once in the background, served for a quarter of an hour, and computed again on request."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

from console_support import NOW
from test_growth_page import WEEK, rows, seed, text

from console.growth import GrowthReport, KpiCache, growth_page
from journey_support import store_event
from store.kpi import KpiReport


def status(page: str) -> str:
    found = re.search(r'data-kpi-status="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_a_report_is_kept_until_computed_again(db, admin):
    http, csrf = admin
    seed(db)
    page = http.get("/console/growth").text
    assert status(page) == "ready"
    assert "1 of 4" in text(rows(page, "kpi")["order_conversion"])

    # A second order that week: the page keeps the report it computed...
    store_event(
        db.factory,
        "v2",
        "order_placed",
        WEEK + timedelta(days=3),
        properties={"order_id": "o2", "total_fen": 5000},
    )
    assert "1 of 4" in text(rows(http.get("/console/growth").text, "kpi")["order_conversion"])

    # ...until asked to compute it again.
    answer = http.post(
        "/console/growth/refresh", data={"csrf": csrf, "since": ""}, follow_redirects=False
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/growth")
    page = http.get("/console/growth").text
    assert "2 of 4" in text(rows(page, "kpi")["order_conversion"])

    # Computing again is a form of the logged-in session, like every other action.
    refused = http.post("/console/growth/refresh", data={"csrf": "forged", "since": ""})
    assert refused.status_code == 403


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 6, 18, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


def empty_report(since: datetime | None, until: datetime) -> GrowthReport:
    start = since or until - timedelta(weeks=26)
    return GrowthReport(KpiReport(since=start, until=until, timezone="Asia/Shanghai", kpis=[]))


def test_a_slow_computation_shows_a_page_that_reloads_itself() -> None:
    release, calls = threading.Event(), []

    def slow(since: datetime | None, until: datetime) -> GrowthReport:
        calls.append(until)
        release.wait(10)
        return empty_report(since, until)

    clock = Clock()
    cache = KpiCache(compute=slow, clock=clock, wait=0.05)
    page = growth_page(cache, now=NOW, since="", timezone="Asia/Shanghai")
    assert page is not None
    assert (page["computing"], page["refresh_after"], page["kpis"]) == (True, 5, [])
    # Another visit while it runs starts nothing more.
    growth_page(cache, now=NOW, since="", timezone="Asia/Shanghai")
    release.set()
    entry = cache.get(None)
    assert entry.report is not None and entry.running is None
    assert len(calls) == 1

    # Past the quarter of an hour the old report is shown while a new one is computed.
    release.clear()
    clock.at += timedelta(minutes=16)
    page = growth_page(cache, now=NOW, since="", timezone="Asia/Shanghai")
    assert page is not None
    assert (page["computing"], page["refresh_after"]) == (True, None)
    assert page["computed_at"] == "2026-06-18 20:00"
    release.set()


def test_a_failed_computation_is_shown_and_tried_again_on_the_next_visit() -> None:
    outcomes: list[Exception | None] = [RuntimeError("statement timeout"), None]

    def flaky(since: datetime | None, until: datetime) -> GrowthReport:
        failure = outcomes.pop(0)
        if failure is not None:
            raise failure
        return empty_report(since, until)

    cache = KpiCache(compute=flaky, clock=Clock(), wait=5)
    page = growth_page(cache, now=NOW, since="", timezone="Asia/Shanghai")
    assert page is not None
    assert (page["error"], page["kpis"]) == ("RuntimeError: statement timeout", [])
    page = growth_page(cache, now=NOW, since="", timezone="Asia/Shanghai")
    assert page is not None
    assert (page["error"], page["computing"]) == (None, False)
    assert outcomes == []
