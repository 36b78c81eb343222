"""A user found by id, email or phone; their timeline with event properties and with the
reason and time of a held send, as the console shows them."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

from console_support import NOW, message_row

from journey_support import add_user, store_event
from store.db import transaction


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_a_user_is_found_by_id_email_or_phone_as_people_type_it(db, admin):
    http, _ = admin
    for user_id, days, email, phone in (
        ("alice-1", 3, "Alice@Example.com", "+8613900139000"),
        ("bob-2", 3, "bob@example.com", "+8613700137000"),
        ("bob-3", 1, "BOB@example.com", "+8613600136000"),
    ):
        add_user(db.factory, user_id, NOW - timedelta(days=days), email=email, phone=phone)
    for typed in (
        "alice-1",
        "alice@example.com",
        " ALICE@example.com ",
        "+86 139-0013-9000",
        "+86 (139) 0013 9000",
        "139 0013 9000",
        "13900139000",
    ):
        found = http.get("/console/users", params={"q": typed})
        assert found.status_code == 303, typed
        assert found.headers["location"] == "/console/users/alice-1", typed

    both = http.get("/console/users", params={"q": "bob@example.com"})
    assert both.status_code == 200
    listed = re.findall(r'<tr data-user="([^"]+)">', both.text)
    assert listed == ["bob-2", "bob-3"]
    assert 'value="bob@example.com"' in both.text  # the box keeps what was typed

    none = http.get("/console/users", params={"q": "+86 188 0000 0000"})
    assert none.status_code == 200
    assert "No user has the id, email or phone +86 188 0000 0000." in text_of(none.text)
    # The search box is on every page, and the users page without a query shows it alone.
    assert 'name="q"' in http.get("/console/journeys").text
    empty = http.get("/console/users")
    assert empty.status_code == 200 and 'id="find-user"' in empty.text
    assert "<table>" not in empty.text.split('id="find-user"')[1]


def test_searching_needs_a_login(db, http):
    answer = http.get("/console/users", params={"q": "alice@example.com"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login"


def test_the_timeline_shows_event_properties_collapsed(db, admin):
    http, _ = admin
    add_user(db.factory, "u1", NOW - timedelta(days=3))
    properties = {"product_id": "sku-42", "price": 99.5, "tags": ["<b>new</b>"]}
    store_event(db.factory, "u1", "product_viewed", NOW - timedelta(days=2), properties=properties)
    store_event(db.factory, "u1", "app_opened", NOW - timedelta(days=1))
    page = http.get("/console/users/u1").text
    details = re.findall(r"<details class=\"properties\">(.*?)</details>", page, re.S)
    assert len(details) == 1  # the event without properties has none to show
    shown = dict(
        re.findall(r'<tr data-property="([^"]+)"><th>[^<]*</th><td>(.*?)</td>', details[0])
    )
    assert {k: unescape(v) for k, v in shown.items()} == {
        "product_id": "sku-42",
        "price": "99.5",
        "tags": '["\\u003cb\\u003enew\\u003c/b\\u003e"]',
    }
    assert "<b>new" not in page
    assert "<summary>3 properties</summary>" in details[0]


def test_a_held_send_says_why_and_until_when_in_the_users_zone_and_utc(db, admin):
    http, _ = admin
    add_user(db.factory, "shanghai", NOW - timedelta(days=3), timezone="Asia/Shanghai")
    add_user(db.factory, "new_york", NOW - timedelta(days=3), timezone="America/New_York")
    add_user(db.factory, "no_zone", NOW - timedelta(days=3), timezone=None)
    morning = NOW.replace(hour=0) + timedelta(days=1)  # 08:00 the next day in Shanghai
    with transaction(db.factory) as session:
        for user_id in ("shanghai", "new_york", "no_zone"):
            row = message_row(user_id, "welcome_sms", "pending", reason="quiet_hours")
            row.deferred_until = morning
            session.add(row)
        capped = message_row(
            "shanghai",
            "day2_push",
            "pending",
            channel="push",
            reason="frequency_cap",
            at=NOW - timedelta(hours=1),
        )
        capped.deferred_until = NOW + timedelta(hours=20)
        session.add(capped)

    def messages(user_id: str) -> list[str]:
        page = http.get(f"/console/users/{user_id}").text
        found = re.findall(r'<tr data-kind="message">(.*?)</tr>', page, re.S)
        return [text_of(row) for row in found]

    assert any(
        row.endswith(
            "sms welcome_sms (welcome_sms_template): deferred — quiet hours; will be tried "
            "again 2026-06-19 08:00 Asia/Shanghai (2026-06-19 00:00 UTC)"
        )
        for row in messages("shanghai")
    )
    assert any(
        row.endswith(
            "push day2_push (day2_push_template): deferred — frequency cap reached; will be "
            "tried again 2026-06-19 06:00 Asia/Shanghai (2026-06-18 22:00 UTC)"
        )
        for row in messages("shanghai")
    )
    assert messages("new_york")[0].endswith(
        "will be tried again 2026-06-18 20:00 America/New_York (2026-06-19 00:00 UTC)"
    )
    # No zone on the profile: the settings' default zone (Asia/Shanghai).
    assert messages("no_zone")[0].endswith(
        "will be tried again 2026-06-19 08:00 Asia/Shanghai (2026-06-19 00:00 UTC)"
    )
