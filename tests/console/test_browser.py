"""Smoke test in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright
against the API process (uvicorn) on 127.0.0.1.

Skipped when Chromium or Playwright is missing, unless LIFECYCLE_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from console_support import TOKEN, enroll, record_send

from journey_support import add_user, publish_shipped
from store.journeys import latest_version
from support import assert_eventually, fail_if_exited

CHROMIUM = Path("/usr/bin/chromium")


def _browser_or_skip() -> None:
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (pip install -e '.[dev]')"
    if missing and os.environ.get("LIFECYCLE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"the browser test is required: {missing}")
    if missing:
        pytest.skip(missing)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(sqlite_db, tmp_path: Path) -> Iterator[str]:
    """The API process (uvicorn, as ``lifecycle api`` runs it) on the test's database."""
    _browser_or_skip()
    port = _free_port()
    env = os.environ | {
        "LIFECYCLE_ENVIRONMENT": "development",
        "LIFECYCLE_DATABASE_URL": sqlite_db.url,
        "LIFECYCLE_ADMIN_TOKEN": TOKEN,
        "LIFECYCLE_DATA_DIR": str(tmp_path / "data"),
    }
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "uvicorn", "--factory", "api.server:app_from_env",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    try:

        def listening() -> bool:
            fail_if_exited(proc)
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True

        assert_eventually(
            listening, timeout=30, interval=0.1, message="the API listening", retry_on=(OSError,)
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_log_in_browse_every_page_publish_and_pause(server, sqlite_db, tmp_path):
    from playwright.sync_api import sync_playwright

    now = datetime.now(UTC)
    publish_shipped(sqlite_db.factory, "cart_abandonment", now - timedelta(days=2))
    add_user(sqlite_db.factory, "shopper-1", now - timedelta(days=2))
    enroll(sqlite_db, "shopper-1", "cart_abandonment", entered=now - timedelta(days=1))
    record_send(
        sqlite_db, "shopper-1", "reminder_push", "sent", journey_id="cart_abandonment",
        channel="push", at=now - timedelta(hours=20),
    )  # fmt: skip

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))

            page.goto(f"{server}/console/journeys")
            assert page.url == f"{server}/console/login"
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_url(f"{server}/console/journeys")

            for path, heading in [
                ("/console/journeys", "Journeys"),
                ("/console/journeys/cart_abandonment", "Cart abandonment"),
                ("/console/audiences", "Audiences"),
                ("/console/audiences/cart_abandoners", "Cart abandoners"),
                ("/console/messages?channel=push", "Messages"),
                ("/console/users/shopper-1", "User"),
                ("/console/reports", "Reports"),
                ("/console/reports/cart_abandonment", "Report"),
            ]:
                answer = page.goto(server + path)
                assert answer is not None and answer.status == 200, path
                assert page.locator("h1").inner_text().startswith(heading), path
            assert page.locator("svg.chart polyline, svg.chart circle").count() > 0

            # Publish a shipped journey from the list, then pause it on its page.
            page.goto(f"{server}/console/journeys")
            page.click('tr[data-journey="dormancy_wakeup"] button:has-text("Publish shipped YAML")')
            page.wait_for_url(f"{server}/console/journeys/dormancy_wakeup?did=published")
            assert page.locator(".stat .pill").inner_text() == "live"
            page.click('button:has-text("Pause")')
            page.wait_for_url(f"{server}/console/journeys/dormancy_wakeup?did=paused")
            assert page.locator(".stat .pill").inner_text() == "paused"
            with sqlite_db.factory() as session:
                row = latest_version(session, journey_id="dormancy_wakeup")
                assert row is not None and (row.version, row.status) == (1, "paused")

            # The diagram is drawn: an SVG with a node per step, laid out with a real size.
            page.goto(f"{server}/console/journeys/cart_abandonment")
            diagram = page.locator("svg.diagram")
            assert diagram.count() == 1
            assert page.locator("svg.diagram g.node").count() == 9  # start, 7 steps, end
            box = diagram.bounding_box()
            assert box is not None and box["width"] > 500 and box["height"] > 500
            sent = page.locator('svg.diagram g[data-step="reminder_push"] text').nth(2)
            assert sent.text_content() == "sent 1 · skipped 0 · deferred 0"

            shot = tmp_path / "journey.png"
            page.screenshot(path=str(shot), full_page=True)
            width, height = _png_size(shot)
            assert width >= 1280 and height > 900
            assert shot.stat().st_size > 20_000
            assert problems == []
        finally:
            browser.close()
