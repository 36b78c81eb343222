"""Every read page of the console on a store of 1M users, with the plans of its statements.

The console must stay usable on a real store: a page reads a page of rows through an index,
never the whole of a big table, and runs a bounded number of statements (no query per row
of a list). Each page below is visited on PostgreSQL with 1M users, 3M events, 1M runs and
their ledger rows and coupons; every statement it runs is captured and explained, and the
whole listing (page, statements, how each table is read) is written to
``$LIFECYCLE_TEST_ARTIFACTS/page-plans.txt`` (default ``test-artifacts/``) for review.

The Messages pages are also run (``EXPLAIN ANALYZE``): a page of the ledger reads about a
page of its rows, however far back it starts and however rare the value it filters on.

A few pages are aggregates: what they show is a count or a sum over everything they
concern, so reading those tables whole is the plan (each says why in ``AGGREGATES``).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Database, make_database
from console_support import NOW, console_client, log_in
from fastapi.testclient import TestClient
from page_plans_support import (
    Captured,
    capturing,
    explain,
    rows_read,
    scans,
    seed,
    seq_scanned,
)

from journey_support import publish_shipped
from support import assert_eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
# The tables that grow with the users: none is read whole by a page unless it says why.
BIG = {"users", "events", "enrollments", "messages", "coupons", "consents", "push_tokens"}
# A page runs a handful of statements; a list page's count must not grow with its rows (the
# reports page runs a report per journey: about ten statements each, for a handful).
MAX_STATEMENTS = 40
# A page of the ledger (50 rows) reads about that many rows wherever it starts: through an
# index in the page's order, not by walking the ledger newest first until rows match.
LEDGER_PAGE_ROWS = 2000


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    # The big tables the page may read whole, and why; empty for a page of indexed reads.
    reads_whole: frozenset[str] = frozenset()
    why: str = ""
    status: int = 200
    # The most ledger rows its statements may read, counted by running them (0: not run).
    ledger_rows: int = 0


USER = "u123457"
AUDIENCE_COUNTS = (
    "an audience's member count is over the whole population: its rule is checked against "
    "every user (and their events, consent, tokens, coupons)"
)
JOURNEY_AGGREGATE = (
    "a journey's totals and money are counts and sums over all of its runs, their ledger rows, "
    "coupons and orders, and each SMS is priced by its recipient's phone: new_user_coupon "
    "holds 80% of the runs, so reading the tables whole is the cheaper plan"
)
JOURNEY_TABLES = frozenset({"enrollments", "messages", "events", "coupons", "users"})

PAGES = [
    Page(
        "journeys list",
        "/console/journeys",
        frozenset({"enrollments"}),
        "each journey's entered/converted/running counts cover all of its runs",
    ),
    Page(
        "a journey",
        "/console/journeys/new_user_coupon",
        JOURNEY_TABLES,
        JOURNEY_AGGREGATE,
    ),
    # A journey with no runs yet, and a report of a week of a smaller journey: indexed reads.
    Page("a journey without runs", "/console/journeys/coupon_expiry"),
    Page("its report, no runs", "/console/reports/coupon_expiry"),
    Page("a week's report", "/console/reports/cart_abandonment?since=2026-06-11"),
    Page("its versions", "/console/journeys/new_user_coupon/versions"),
    Page("its draft", "/console/journeys/new_user_coupon/draft"),
    Page(
        "its report",
        "/console/reports/new_user_coupon",
        JOURNEY_TABLES,
        JOURNEY_AGGREGATE,
    ),
    Page(
        "its report since a day",
        "/console/reports/new_user_coupon?since=2026-06-01",
        JOURNEY_TABLES,
        JOURNEY_AGGREGATE,
    ),
    Page(
        "reports",
        "/console/reports",
        JOURNEY_TABLES,
        JOURNEY_AGGREGATE,
    ),
    Page("audiences list", "/console/audiences", frozenset(BIG), AUDIENCE_COUNTS),
    Page("an audience", "/console/audiences/mother_and_baby", frozenset(BIG), AUDIENCE_COUNTS),
    *(
        Page(name, f"/console/messages{query}", ledger_rows=LEDGER_PAGE_ROWS)
        for name, query in (
            ("messages", ""),
            ("messages, older page", "?before=1000000"),
            ("messages of a journey's skips", "?journey=new_user_coupon&status=skipped"),
            ("messages of a step", "?journey=new_user_coupon&step=day2_push"),
            ("messages by reason", "?reason=invalid_number"),
            ("messages of a user", f"?user={USER}"),
            ("messages on a channel in days", "?channel=sms&from=2026-06-01&to=2026-06-10"),
            ("messages in days", "?from=2025-07-01&to=2025-07-02"),
            # A page far back, or of a value one row in 10,000 has: walking the ledger newest
            # first to find such rows would read every row newer than them.
            ("messages to a month back", "?to=2026-05-18"),
            ("messages of a rare reason", "?reason=quiet_hours"),
            ("messages of a rare status", "?status=bounced"),
            ("messages of a rare status, a month back", "?status=bounced&to=2026-05-18"),
            ("messages of a journey, a month back", "?journey=cart_abandonment&to=2026-05-18"),
        )
    ),
    Page("user search by id", f"/console/users?q={USER}", status=303),
    Page("user search by email", "/console/users?q=User123457@Example.com", status=303),
    Page("user search by phone", "/console/users?q=%2B8613800123457", status=303),
    Page("user search, nobody", "/console/users?q=nobody@example.com"),
    Page("a user with timeline", f"/console/users/{USER}"),
    Page("templates", "/console/templates"),
    Page("a template for a user", f"/console/templates/new_user_welcome_sms?user={USER}"),
    Page("broadcasts list", "/console/broadcasts"),
    Page("a broadcast", "/console/broadcasts/3"),
    Page("new broadcast form", "/console/broadcasts/new"),
    Page("rejected events", "/console/rejected"),
    Page(
        "growth KPIs",
        "/console/growth",
        frozenset({"users", "events", "enrollments", "messages", "coupons"}),
        "the KPIs (activation, repeat purchase, retention cohorts...) are computed over every "
        "user and event of the window, in the background, and cached (console.growth)",
    ),
]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, postgres_ok: bool) -> Iterator[Database]:
    """A migrated PostgreSQL store with 1M users and their history, the journeys published."""
    databases = make_database("postgresql", tmp_path_factory.mktemp("plans"), postgres_ok)
    db = next(databases)
    try:
        seed(db.engine, NOW)
        for journey in ("new_user_coupon", "cart_abandonment", "coupon_expiry", "dormancy_wakeup"):
            publish_shipped(db.factory, journey, NOW - timedelta(days=400))
        yield db
    finally:
        databases.close()  # drops the schema


@pytest.fixture(scope="module")
def visits(big: Database) -> dict[str, list[Captured]]:
    """Each page's statements, explained; the listing written for review."""
    # Temporal on a closed port: the journey page's who-is-where says it cannot be shown.
    http = console_client(big, temporal_address="127.0.0.1:9")
    log_in(http)
    seen: dict[str, list[Captured]] = {}
    for page in PAGES:
        with capturing(big.engine) as statements:
            answer = visit(http, page)
        assert answer.status_code == page.status, f"{page.name}: {answer.text[:500]}"
        seen[page.name] = list(statements)
    for page in PAGES:
        for captured in seen[page.name]:
            captured.plan = explain(big.engine, captured)
            if page.ledger_rows:
                captured.run = explain(big.engine, captured, run=True)
    write_listing(seen)
    return seen


def visit(http: TestClient, page: Page) -> Any:
    if page.name != "growth KPIs":
        return http.get(page.path)
    # Computed in the background: the page says so until the report is there.
    return assert_eventually(
        lambda: (
            (a := http.get(page.path)).status_code == 200
            and 'data-kpi-status="computing"' not in a.text
            and a
        ),
        timeout=120,
        interval=0.5,
        message="the KPIs computed",
    )


def write_listing(seen: dict[str, list[Captured]]) -> None:
    folder = Path(os.environ.get("LIFECYCLE_TEST_ARTIFACTS", REPO / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["The console's pages on 1M users: each statement and how it reads each table.", ""]
    for page in PAGES:
        statements = seen[page.name]
        lines.append(f"== {page.name}: GET {page.path} ({len(statements)} statements)")
        if page.reads_whole:
            lines.append(f"   reads whole {', '.join(sorted(page.reads_whole))}: {page.why}")
        for n, captured in enumerate(statements, 1):
            plan = captured.plan
            lines.append(f"-- {n}. cost {plan['Total Cost']:.0f}, rows {plan['Plan Rows']}")
            lines.append(textwrap.indent(" ".join(captured.sql.split()), "   "))
            lines += [f"     {scan}" for scan in scans(plan)] or ["     (no table)"]
            if captured.run:
                lines.append(f"     run: {rows_read(captured.run, 'messages')} ledger rows read")
        lines.append("")
    (folder / "page-plans.txt").write_text("\n".join(lines), encoding="utf-8")


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_reads_big_tables_through_indexes(
    visits: dict[str, list[Captured]], page: Page
) -> None:
    whole: dict[str, set[str]] = {}
    for captured in visits[page.name]:
        for table in (seq_scanned(captured.plan) & BIG) - page.reads_whole:
            whole.setdefault(table, set()).add(" ".join(captured.sql.split())[:300])
    assert not whole, f"{page.name} reads whole: {whole}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_runs_a_bounded_number_of_statements(
    visits: dict[str, list[Captured]], page: Page
) -> None:
    assert len(visits[page.name]) <= MAX_STATEMENTS, [c.sql for c in visits[page.name]]


MEASURED = [p for p in PAGES if p.ledger_rows]


@pytest.mark.parametrize("page", MEASURED, ids=[p.name for p in MEASURED])
def test_a_ledger_page_reads_about_a_page_of_rows(
    visits: dict[str, list[Captured]], page: Page
) -> None:
    read = {" ".join(c.sql.split())[:300]: rows_read(c.run, "messages") for c in visits[page.name]}
    assert sum(read.values()) <= page.ledger_rows, f"{page.name} reads: {read}"
