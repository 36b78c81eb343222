"""The console's broadcast screen without Temporal: the list, the new-broadcast form, its
preview after the delivery policy (the same counts as the preview service, the send time in
the chosen zone), the form's mistakes in the CLI's words, CSRF, escaping."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from console_support import NOW, console_client, log_in
from sqlalchemy import func, select, update

from activities.policy import DeliveryRules
from audiences.audience import shipped_audiences
from audiences.saved import save_audience
from config import Settings
from journey_support import add_user
from message_templates.render import TemplateRenderer
from store.db import transaction
from store.models import Broadcast, Consent, User
from triggers.broadcast_preview import preview
from triggers.broadcasts import BroadcastPlan, plan_broadcast, store_plan
from workflows.ids import broadcast_workflow_id

TAG = "母婴人群"  # the shipped mother_and_baby audience takes users with this tag
FORM = {
    "audience": "mother_and_baby",
    "template": "sale_preheat_sms",
    "channel": "sms",
    "timezone": "Asia/Shanghai",
    "rate": "1/s",
    "topic": "marketing",
}


@pytest.fixture
def shop(db):
    """Five mothers in Shanghai (one unsubscribed from SMS marketing, one without a phone)
    and a logged-in console whose quiet hours are 21:00-08:00."""
    for i in range(4):
        add_user(db.factory, f"m{i}", NOW - timedelta(days=3))
    add_user(db.factory, "m4", NOW - timedelta(days=3), phone=None)
    with transaction(db.factory) as session:
        session.execute(update(User).values(tags=[TAG]))
        session.add(
            Consent(
                user_id="m3",
                channel="sms",
                topic="marketing",
                status="unsubscribed",
                updated_at=NOW,
            )
        )
    http = console_client(db, quiet_hours="21:00-08:00")
    return http, log_in(http)


def cli_plan(**changes: Any) -> BroadcastPlan:
    """The plan ``lifecycle broadcast start`` makes of the form's defaults and ``changes``."""
    flags: dict[str, Any] = {"at": None, "rate": None, "name": None, "now": NOW}
    flags |= {k: v for k, v in FORM.items() if k in ("audience", "template", "channel", "topic")}
    return plan_broadcast(TemplateRenderer(), **(flags | changes))


def outcomes(page: str) -> dict[str, int]:
    rows = re.findall(r'data-outcome="([a-z_]+)"><td>[^<]*</td><td class="num">(\d+)<', page)
    return {reason: int(n) for reason, n in rows}


def test_the_form_offers_the_shipped_audiences_templates_and_the_settings_zone(shop):
    http, _ = shop
    page = http.get("/console/broadcasts/new")
    assert page.status_code == 200
    for audience in shipped_audiences().values():
        assert f'<option value="{audience.id}"' in page.text
    assert '<option value="sale_preheat_sms">sale_preheat_sms (sms)</option>' in page.text
    assert 'name="timezone" value="Asia/Shanghai"' in page.text
    assert 'id="preview"' not in page.text  # nothing previewed until asked


@pytest.mark.parametrize(
    ("send_at", "zone", "expected"),
    [
        # 22:00 in Shanghai: the three reachable mothers are held until morning.
        ("2026-06-18T22:00", "Asia/Shanghai", {"ready": 0, "quiet_hours": 3}),
        # The same instant, chosen in New York's wall clock (10:00 there).
        ("2026-06-18T10:00", "America/New_York", {"ready": 0, "quiet_hours": 3}),
        # 15:00 in Shanghai: sent.
        ("2026-06-18T15:00", "Asia/Shanghai", {"ready": 3}),
    ],
)
def test_the_preview_counts_what_the_policy_decides_at_the_send_time(
    shop, db, send_at, zone, expected
):
    http, _ = shop
    page = http.get(
        "/console/broadcasts/new",
        params=FORM | {"preview": "1", "send_at": send_at, "timezone": zone},
    )
    assert page.status_code == 200, page.text
    shown = outcomes(page.text)
    assert shown == expected | {"unsubscribed": 1, "unreachable": 1}
    assert "<b>5</b> member(s)" in page.text
    # The same numbers as the preview service for the plan the CLI would make.
    plan = cli_plan(
        at=datetime.fromisoformat(send_at).replace(tzinfo=ZoneInfo(zone)).isoformat(), rate="1/s"
    )
    rules = DeliveryRules.from_settings(
        Settings(environment="development", quiet_hours="21:00-08:00")
    )
    service = preview(db.factory, plan, at=plan.send_at, rules=rules)
    assert shown["ready"] == service.ready
    assert {k: v for k, v in shown.items() if k != "ready"} == service.skipped | service.deferred
    assert f"takes {'3 s' if expected['ready'] else '0 s'}" in page.text
    # Scheduling is a POST carrying the session's CSRF token and every field as previewed.
    assert 'method="post" action="/console/broadcasts"' in page.text
    assert f'name="send_at" value="{send_at}"' in page.text


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"rate": "fast"}, "rate &#39;fast&#39;: give messages per second, e.g. 50/s"),
        ({"holdout": "80"}, "holdout &#39;80&#39;: a percent of the audience from 0 to 50"),
        ({"audience": "../../etc/passwd"}, "choose a shipped or saved audience"),
        ({"template": "dormancy_offer_push"}, "template dormancy_offer_push:"),
        (
            {"send_at": "2026-06-17T10:00"},
            "send time &#39;2026-06-17T10:00:00+08:00&#39;: in the past",
        ),
        ({"timezone": "Mars/Olympus"}, "timezone &#39;Mars/Olympus&#39;: an IANA zone"),
    ],
)
def test_a_mistake_is_named_and_nothing_is_previewed(shop, change, said):
    http, _ = shop
    page = http.get(
        "/console/broadcasts/new",
        params=FORM | {"preview": "1", "send_at": "2026-06-18T15:00"} | change,
    )
    assert page.status_code == 400
    assert said in page.text
    assert 'id="preview"' not in page.text


def test_a_saved_audience_is_offered_previewed_and_frozen_in_the_plan(shop, db):
    http, _ = shop
    with transaction(db.factory) as session:
        save_audience(
            session, name="mums", source=f"tag: {TAG}\n", saved_by="test", note="mums", now=NOW
        )
    assert '<option value="mums">mums (mums)</option>' in http.get("/console/broadcasts/new").text
    asked = FORM | {"preview": "1", "send_at": "2026-06-18T15:00", "audience": "mums"}
    page = http.get("/console/broadcasts/new", params=asked)
    assert page.status_code == 200, page.text
    assert outcomes(page.text) == {"ready": 3, "unsubscribed": 1, "unreachable": 1}
    plan = cli_plan(audience="mums", sessions=db.factory)
    assert plan.audience_source == "saved audience mums v1"
    assert plan.audience_data == {
        "id": "mums",
        "name": "mums",
        "description": "mums",
        "rule": {"tag": TAG},
    }


def test_forged_posts_are_refused_and_nothing_is_stored(shop, db):
    http, csrf = shop
    stored = stored_broadcast(db)
    for path in (
        "/console/broadcasts",
        f"/console/broadcasts/{stored}/pause",
        f"/console/broadcasts/{stored}/cancel",
    ):
        for fields in ({}, {"csrf": "forged"}, {"csrf": csrf[:-1]}):
            answer = http.post(path, data=FORM | {"send_at": "2026-06-18T15:00"} | fields)
            assert answer.status_code == 403, path
            assert "did not come from the console" in answer.text
    with db.factory() as session:
        assert session.scalar(select(func.count()).select_from(Broadcast)) == 1
    http.cookies.clear()
    assert (
        http.post("/console/broadcasts", data=FORM | {"csrf": csrf}).status_code == 303
    )  # to login


def test_a_broken_schedule_form_says_why(shop, db):
    http, csrf = shop
    answer = http.post("/console/broadcasts", data=FORM | {"csrf": csrf, "rate": "0/s"})
    assert answer.status_code == 400
    assert "rate &#39;0/s&#39;" in answer.text
    with db.factory() as session:
        assert session.scalar(select(func.count()).select_from(Broadcast)) == 0


def stored_broadcast(db, name: str = "VIP 618", status: str = "scheduled") -> int:
    plan = cli_plan(rate="50/s", name=name, holdout="5")
    with transaction(db.factory) as session:
        row = store_plan(session, plan, now=NOW)
        row.status = status
        return row.id


def test_names_are_escaped_on_every_page(shop, db, monkeypatch):
    http, _ = shop
    evil = '<img src=x onerror="alert(1)">'
    broadcast_id = stored_broadcast(db, name=evil, status="completed")
    listing = http.get("/console/broadcasts").text
    detail = http.get(f"/console/broadcasts/{broadcast_id}").text
    real = shipped_audiences()
    fake = replace(real["mother_and_baby"], name=evil)
    monkeypatch.setattr(
        "console.routes.broadcasts._audiences", lambda _: real | {"mother_and_baby": fake}
    )
    form = http.get("/console/broadcasts/new", params=FORM | {"preview": "1", "name": evil}).text
    for page in (listing, detail, form):
        assert evil not in page
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert 'name="name" value="&lt;img' in form  # the hidden field of the schedule form too


def test_the_list_and_a_finished_broadcast(shop, db):
    http, _ = shop
    broadcast_id = stored_broadcast(db, status="completed")
    listing = http.get("/console/broadcasts")
    assert listing.status_code == 200
    assert f'data-broadcast="{broadcast_id}"' in listing.text and "VIP 618" in listing.text
    assert "5%" in listing.text
    detail = http.get(f"/console/broadcasts/{broadcast_id}")
    assert detail.status_code == 200
    assert "completed: 0 recipient(s); ledger: nothing yet" in detail.text
    assert 'id="progress"' not in detail.text  # no buttons, no reload once it has ended
    assert 'http-equiv="refresh"' not in detail.text
    assert http.get("/console/broadcasts/999999").status_code == 404
    assert broadcast_workflow_id(broadcast_id) == f"broadcast:{broadcast_id}"


def test_logged_out_the_pages_send_to_login(db):
    http = console_client(db)
    for path in ("/console/broadcasts", "/console/broadcasts/new", "/console/broadcasts/1"):
        answer = http.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
