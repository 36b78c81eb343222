"""In a real browser: build an audience from nothing in the console's builder, see its count
and sample, and save it (no script runs; every button posts the form)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from browser_support import Screenshots, chromium_page, log_in, server  # noqa: F401 - a fixture

from store.db import transaction
from store.models import User
from store.saved_audiences import saved_versions


def test_build_count_and_save_an_audience(server, sqlite_db, request):  # noqa: F811
    now = datetime.now(UTC)
    with transaction(sqlite_db.factory) as session:
        for user_id, tags in (("vip-1", ["vip"]), ("vip-2", ["vip"]), ("plain", [])):
            at = now - timedelta(days=3)
            session.add(User(id=user_id, created_at=at, updated_at=at, traits={}, tags=tags))

    with chromium_page() as (page, problems):
        shots = Screenshots(page, request.node.name)
        log_in(page, server)

        page.goto(f"{server}/console/audiences")
        shots.take("audiences")
        page.click("text=New audience")
        page.wait_for_url(f"{server}/console/audiences/new")
        page.select_option('select[name="add_kind"]', "tag")
        page.click('button:has-text("Add condition")')
        page.fill('input[name="r0.value"]', "vip")
        page.press('input[name="r0.value"]', "Enter")  # Enter shows the count
        page.wait_for_load_state()
        assert page.locator("[data-count]").inner_text() == "2"
        assert page.locator("tr[data-member]").count() == 2
        assert page.locator("textarea[data-yaml]").input_value() == "all:\n- tag: vip\n"
        shots.take("audience-builder")

        page.fill('input[name="name"]', "vip_only")
        page.fill('input[name="note"]', "all tagged vip")
        page.click('button:has-text("Save")')
        page.wait_for_url(f"{server}/console/audiences/vip_only?did=saved-v1")
        assert page.locator("h1").inner_text().startswith("vip_only")
        assert page.locator("tr[data-version]").count() == 1
        shots.take("audience-saved")
        assert problems == []
    with sqlite_db.factory() as session:
        assert [v.note for v in saved_versions(session, name="vip_only")] == ["all tagged vip"]
