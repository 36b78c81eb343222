"""Smoke test in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright
against the API process (uvicorn) on 127.0.0.1.

Skipped when Chromium or Playwright is missing, unless LIFECYCLE_REQUIRE_BROWSER=1 (CI).
Each page's screenshot is kept under ``test-artifacts/screenshots/`` (see browser_support).
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

from browser_support import Screenshots, chromium_page, server  # noqa: F401 - a fixture
from console_support import TOKEN, enroll, record_send

from journey_support import add_user, publish_shipped
from store.journeys import latest_version


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_log_in_browse_every_page_publish_and_pause(server, sqlite_db, request):  # noqa: F811
    now = datetime.now(UTC)
    publish_shipped(sqlite_db.factory, "cart_abandonment", now - timedelta(days=2))
    add_user(sqlite_db.factory, "shopper-1", now - timedelta(days=2))
    enroll(sqlite_db, "shopper-1", "cart_abandonment", entered=now - timedelta(days=1))
    record_send(
        sqlite_db, "shopper-1", "reminder_push", "sent", journey_id="cart_abandonment",
        channel="push", at=now - timedelta(hours=20),
    )  # fmt: skip

    with chromium_page() as (page, problems):
        shots = Screenshots(page, request.node.name)
        page.goto(f"{server}/console/journeys")
        assert page.url == f"{server}/console/login"
        shots.take("login")
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
            shots.take(path.removeprefix("/console/").split("?")[0].replace("/", "-"))
        assert page.locator("svg.chart polyline, svg.chart circle").count() > 0

        # Publish a shipped journey from the list, then pause it on its page.
        page.goto(f"{server}/console/journeys")
        page.click('tr[data-journey="dormancy_wakeup"] button:has-text("Publish shipped YAML")')
        page.wait_for_url(f"{server}/console/journeys/dormancy_wakeup?did=published")
        assert page.locator(".stat .pill").inner_text() == "live"
        shots.take("journey-published")
        page.click('button:has-text("Pause")')
        page.wait_for_url(f"{server}/console/journeys/dormancy_wakeup?did=paused")
        assert page.locator(".stat .pill").inner_text() == "paused"
        shots.take("journey-paused")
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

        shot = shots.take("journey-diagram")
        width, height = _png_size(shot)
        assert width >= 1280 and height > 900
        assert shot.stat().st_size > 20_000
        assert problems == []
