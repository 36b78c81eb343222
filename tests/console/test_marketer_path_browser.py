"""A growth marketer's whole path through the console, in a real browser.

Headless Chromium clicks through the API process (uvicorn), with a Temporal dev server and a
``lifecycle worker`` process behind it, every channel on the outbox:

1. a new journey is built from nothing in the journey builder (on ``user_signed_up``: an SMS,
   a two-day wait, exit) and saved as a draft;
2. the draft is simulated, and the simulation's funnel shows;
3. it is published with a note, which the version history shows;
4. a user signs up through the ingestion API, gets the SMS at once and is shown waiting at
   the wait step in "who is where";
5. the user is ejected from the console: the run ends ``ejected`` and the user's timeline
   says so;
6. an audience is built and saved, and a broadcast to it previewed, scheduled to send now and
   watched to completion: the outbox holds one message per member.

Skipped without Chromium unless LIFECYCLE_REQUIRE_BROWSER=1. Screenshots of every page go to
``test-artifacts/screenshots/`` (see browser_support).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from browser_support import ROOT, Screenshots, api_process, browser_or_skip, chromium_page, log_in
from conftest import Database
from console_support import TOKEN
from sqlalchemy import select

from bench.chaos_kill_worker import WorkerProcess, temporal_dev_server
from store.db import transaction
from store.models import Enrollment, OutboxMessage, User
from support import assert_eventually

if TYPE_CHECKING:
    from playwright.sync_api import Page

JOURNEY = "welcome_signup_sms"
TEMPLATE = "sale_preheat_sms"  # needs only the user's name: no coupon, no trigger properties
MEMBERS = {f"vip-{i}": f"+8613900000{i:03d}" for i in range(3)}
NEWCOMER_PHONE = "+8613700000001"
WRITE_KEY = "dev-write-key"


def _stack_env(db: Database, temporal: str, workdir: Path) -> dict[str, str]:
    """The API's and the worker's settings: one database, one Temporal, one task queue;
    outbox channels, no quiet hours and no frequency caps, so nothing is deferred or skipped
    whatever the time of day."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    return env | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "LIFECYCLE_ENVIRONMENT": "development",
        "LIFECYCLE_DATABASE_URL": db.url,
        "LIFECYCLE_TEMPORAL_ADDRESS": temporal,
        "LIFECYCLE_TASK_QUEUE": f"path-{uuid.uuid4().hex[:8]}",
        "LIFECYCLE_DATA_DIR": str(workdir / "data"),
        "LIFECYCLE_ADMIN_TOKEN": TOKEN,
        "LIFECYCLE_QUIET_HOURS": "off",
        "LIFECYCLE_CAP_SMS_PER_DAY": "0",
        "LIFECYCLE_CAP_MARKETING_PER_WEEK": "0",
        "LIFECYCLE_WORKER_METRICS_ADDRESS": "",  # no port shared with another test's worker
    }


@contextmanager
def _stack(db: Database, workdir: Path) -> Iterator[str]:
    """A Temporal dev server, a worker process and the API process; the API's URL."""
    with temporal_dev_server(workdir) as temporal:
        env = _stack_env(db, temporal, workdir)
        (workdir / "worker").mkdir()
        worker = WorkerProcess(env, workdir / "worker")
        worker.start()
        try:
            with api_process(env, cwd=workdir) as url:
                assert_eventually(
                    worker.ready, timeout=90, interval=0.2, message="the worker ready"
                )
                yield url
        finally:
            worker.stop()


def _seed_members(db: Database) -> None:
    """Three customers tagged vip, each with a phone of their own."""
    at = datetime.now(UTC) - timedelta(days=3)
    with transaction(db.factory) as session:
        for user_id, phone in MEMBERS.items():
            session.add(
                User(
                    id=user_id, created_at=at, updated_at=at, traits={}, tags=["vip"],
                    phone=phone, locale="zh-CN", timezone="Asia/Shanghai",
                )
            )  # fmt: skip


def _post(page: Page, selector: str) -> None:
    """Press a button that posts its form, and wait for the page that answers."""
    with page.expect_navigation():
        page.click(selector)


def _row_field(page: Page, path: str, name: str) -> str:
    """The selector of the field ``name`` of the builder's step at ``path`` (open)."""
    return f'[data-row="{path}"] [name$=".{name}"]'


def _add_step(page: Page, at: int, kind: str, **fields: str) -> None:
    """Add a ``kind`` step at ``at`` in the builder and type its fields."""
    page.select_option(f'select[name="add_type:steps:{at}"]', kind)
    _post(page, f'button[value="add:steps:{at}"]')
    for name, value in fields.items():
        page.fill(_row_field(page, f"steps[{at}]", name), value)


def _outbox_to(db: Database, phones: list[str]) -> list[str]:
    with db.factory() as session:
        return list(
            session.scalars(
                select(OutboxMessage.recipient).where(OutboxMessage.recipient.in_(phones))
            )
        )


def test_build_simulate_publish_enter_eject_and_broadcast(sqlite_db, tmp_path, request):
    browser_or_skip()
    db = sqlite_db
    _seed_members(db)
    newcomer = f"newcomer-{uuid.uuid4().hex[:6]}"
    with _stack(db, tmp_path) as server, chromium_page() as (page, problems):
        console = f"{server}/console"
        shots = Screenshots(page, request.node.name)
        log_in(page, server)
        shots.take("journeys")

        # 1. A new journey, from nothing, in the builder.
        page.fill('input[name="id"]', JOURNEY)
        _post(page, 'button:has-text("New journey")')
        assert page.locator("h1").inner_text().startswith("Builder")
        shots.take("builder-new")
        page.fill('input[name="j.name"]', "Welcome SMS at signup")
        page.fill('input[name="j.trigger.event"]', "user_signed_up")
        _add_step(page, 0, "send", id="welcome", template=TEMPLATE)
        page.select_option(_row_field(page, "steps[0]", "channel"), "sms")
        _add_step(page, 1, "wait", id="wait_2d", duration="2d")
        _add_step(page, 2, "exit", id="done")
        with page.expect_navigation():  # Enter in a field applies the form
            page.press(_row_field(page, "steps[2]", "id"), "Enter")
        assert page.locator("[data-problems]").get_attribute("data-problems") == "0", page.locator(
            "form"
        ).inner_text()
        shots.take("builder-built")
        _post(page, 'button[value="save"]')
        assert page.url == f"{console}/journeys/{JOURNEY}/builder?did=saved"
        assert "Draft saved." in page.locator(".notice").inner_text()
        shown = page.locator("pre[data-yaml]").inner_text()
        assert "event: user_signed_up" in shown and f"template: {TEMPLATE}" in shown
        assert "duration: 2d" in shown and "type: exit" in shown
        shots.take("builder-saved")

        # 2. Simulate the draft; the funnel shows when the job is done.
        page.click("text=Open the draft")
        page.wait_for_url(f"{console}/journeys/{JOURNEY}/draft")
        shots.take("draft")
        _post(page, 'button:has-text("Simulate this draft")')
        assert page.url == f"{console}/journeys/{JOURNEY}/draft/simulation"
        shots.take("simulation-running")
        page.wait_for_selector(
            '[data-status="done"], [data-status="failed"]', timeout=150_000, state="attached"
        )
        assert page.locator("[data-status]").first.get_attribute("data-status") == "done", (
            page.locator("[data-status]").first.inner_text()
        )
        funnel = page.locator("pre[data-result]").inner_text()
        assert "entered" in funnel and "welcome · sms: sent / reached" in funnel
        shots.take("simulation-done")

        # 3. Publish it with a note; the versions show it.
        page.goto(f"{console}/journeys/{JOURNEY}/draft")
        page.fill('input[name="note"]', "first welcome SMS")
        _post(page, 'button:has-text("Publish")')
        assert page.url == f"{console}/journeys/{JOURNEY}/versions?did=published"
        assert page.locator("tr[data-version]").count() == 1
        assert "first welcome SMS" in page.locator('tr[data-version="1"]').inner_text()
        shots.take("versions")

        # 4. A user signs up through the ingestion API; who is where shows them waiting.
        now = datetime.now(UTC).isoformat()
        for path, call in (
            ("identify", {"traits": {"phone": NEWCOMER_PHONE, "name": "Mei"}}),
            ("track", {"event": "user_signed_up", "properties": {"channel": "app"}}),
        ):
            body = {"userId": newcomer, "messageId": f"{path}-{newcomer}", "timestamp": now}
            answer = httpx.post(
                f"{server}/v1/{path}", json=body | call, auth=(WRITE_KEY, ""), timeout=30
            )
            assert answer.status_code == 200, answer.text
        assert_eventually(
            lambda: _outbox_to(db, [NEWCOMER_PHONE]) == [NEWCOMER_PHONE],
            timeout=60,
            interval=0.3,
            message="the welcome SMS in the outbox",
        )

        def waiting_at_the_wait_step() -> bool:
            page.goto(f"{console}/journeys/{JOURNEY}")
            row = page.locator('tr[data-step="wait_2d"]')
            return row.count() == 1 and row.inner_text().split()[:2] == ["wait_2d", "1"]

        assert_eventually(
            waiting_at_the_wait_step, timeout=60, interval=0.5, message="who is where"
        )
        shots.take("journey-who-is-where")

        # 5. Eject them from the console; the run ends ejected, the timeline says so.
        page.click('tr[data-step="wait_2d"] a:has-text("who")')
        page.wait_for_url(f"{console}/journeys/{JOURNEY}/runs/wait_2d")
        shots.take("runs-at-wait")
        page.check(f'tr[data-user="{newcomer}"] input[type=checkbox]')
        page.fill('input[name="reason"]', "signed up by mistake")
        _post(page, 'button:has-text("Eject selected")')
        assert "Ejected 1 run(s)" in page.locator(".notice").inner_text()
        shots.take("runs-ejected")

        def exit_reason() -> str | None:
            with db.factory() as session:
                return session.scalar(
                    select(Enrollment.exit_reason).where(Enrollment.user_id == newcomer)
                )

        assert_eventually(
            lambda: exit_reason() == "ejected", timeout=60, interval=0.3, message="the exit"
        )
        page.goto(f"{console}/users/{newcomer}")
        timeline = page.locator("body").inner_text()
        assert f"ejected from {JOURNEY} at wait_2d by console: signed up by mistake" in timeline
        shots.take("user-timeline")

        # 6. An audience, saved; a broadcast to it, previewed, sent now and watched to the end.
        page.goto(f"{console}/audiences")
        page.click("text=New audience")
        page.wait_for_url(f"{console}/audiences/new")
        page.select_option('select[name="add_kind"]', "tag")
        _post(page, 'button:has-text("Add condition")')
        page.fill('input[name="r0.value"]', "vip")
        with page.expect_navigation():
            page.press('input[name="r0.value"]', "Enter")  # Enter shows the count
        assert page.locator("[data-count]").inner_text() == str(len(MEMBERS))
        shots.take("audience-builder")
        page.fill('input[name="name"]', "vip_members")
        page.fill('input[name="note"]', "every vip")
        _post(page, 'button:has-text("Save")')
        assert page.url == f"{console}/audiences/vip_members?did=saved-v1"
        shots.take("audience-saved")

        page.goto(f"{console}/broadcasts/new")
        page.fill("#name", "vip pre-heat")
        page.select_option("#audience", "vip_members")
        page.select_option("#template", TEMPLATE)
        page.select_option("#channel", "sms")
        _post(page, 'button:has-text("Preview")')
        assert page.locator("#members b").inner_text() == str(len(MEMBERS))
        ready = page.locator('tr[data-outcome="ready"] td.num').inner_text()
        assert ready == str(len(MEMBERS))
        shots.take("broadcast-preview")
        _post(page, 'button:has-text("Schedule")')
        assert "Scheduled" in page.locator(".notice").inner_text()
        shots.take("broadcast-scheduled")

        def completed() -> bool:
            page.reload()
            return page.locator("h1 .pill").inner_text() == "completed"

        assert_eventually(completed, timeout=90, interval=1, message="the broadcast done")
        assert page.locator('tr[data-count="sent"] td.num').inner_text() == str(len(MEMBERS))
        shots.take("broadcast-done")
        assert problems == []

    # The outbox: one message to each member, and the newcomer's one welcome.
    assert sorted(_outbox_to(db, list(MEMBERS.values()))) == sorted(MEMBERS.values())
    assert _outbox_to(db, [NEWCOMER_PHONE]) == [NEWCOMER_PHONE]
