"""Audiences, the message ledger, a user's page and reports, as the console shows them."""

from __future__ import annotations

import io
import random
import re
from datetime import datetime, timedelta
from html import unescape

from console_support import NOW, enroll, message_row, record_send, seed_journey
from rich.console import Console
from sqlalchemy import select

from audiences.audience import shipped_audiences
from devstack.views import print_report
from journey_support import add_user, publish_shipped, publish_text, store_event
from journeys.validate import shipped_journey_files
from store.db import transaction
from store.models import Message
from store.reports import journey_report


def rows(page: str, attribute: str) -> dict[str, str]:
    """Table rows by their ``data-<attribute>``, with tags stripped and spaces collapsed."""
    found = re.findall(rf'<tr data-{attribute}="([^"]*)">(.*?)</tr>', page, re.S)
    return {
        unescape(key): " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())
        for key, body in found
    }


def test_audiences_show_rule_count_and_why_a_sample_matched(db, admin):
    http, _ = admin
    add_user(db.factory, "fresh-1", NOW - timedelta(days=2))
    add_user(db.factory, "fresh-2", NOW - timedelta(days=6))
    add_user(db.factory, "old", NOW - timedelta(days=30))
    add_user(db.factory, "buyer", NOW - timedelta(days=1))
    for user_id, days in (("fresh-1", 2), ("fresh-2", 6), ("old", 30), ("buyer", 1)):
        store_event(db.factory, user_id, "user_signed_up", NOW - timedelta(days=days))
    store_event(db.factory, "buyer", "order_placed", NOW - timedelta(hours=5))
    add_user(db.factory, "visitor", NOW - timedelta(days=1))  # first seen, never signed up
    store_event(db.factory, "visitor", "product_viewed", NOW - timedelta(days=1))

    listed = rows(http.get("/console/audiences").text, "audience")
    assert set(listed) == set(shipped_audiences())
    assert listed["new_users_7d"].startswith("New users (7 days) new_users_7d")
    assert listed["new_users_7d"].endswith(" 2")  # members now
    assert "user_signed_up at least 1× within 7d" in listed["new_users_7d"]

    page = http.get("/console/audiences/new_users_7d").text
    members = rows(page, "member")
    assert list(members) == ["fresh-1", "fresh-2"]
    assert "✓ user_signed_up at least 1× within 7d" in members["fresh-1"]
    assert "✓ order_placed exactly 0×" in members["fresh-1"]
    assert http.get("/console/audiences/nobody_at_all").status_code == 404


def seed_ledger(db, count: int = 160) -> None:
    channels = ("sms", "push", "email")
    with transaction(db.factory) as session:
        for i in range(count):
            status = "skipped" if i % 4 == 0 else "sent"
            reason = (
                ("quiet_hours" if i % 8 == 0 else "frequency_cap") if status == "skipped" else None
            )
            session.add(
                message_row(
                    f"u-{i % 10}",
                    "welcome_sms" if i % 2 else "day2_push",
                    status,
                    channel=channels[i % 3],
                    reason=reason,
                    at=NOW - timedelta(minutes=count - i),
                )
            )


def seed_shuffled_ledger(db, count: int = 140) -> None:
    """Ledger rows an hour apart back from ``NOW``, two per instant, written in a shuffled
    order: their ids are not in ``created_at`` order. A third are skipped (half of those for
    quiet hours); every fifth is an email."""
    with transaction(db.factory) as session:
        for i in random.Random(7).sample(range(count), count):
            session.add(
                message_row(
                    f"s-{i}",
                    "welcome_sms",
                    "skipped" if i % 3 == 0 else "sent",
                    channel="email" if i % 5 == 0 else "sms",
                    reason=("quiet_hours" if i % 2 else "frequency_cap") if i % 3 == 0 else None,
                    at=NOW - timedelta(hours=i // 2),
                )
            )
    with db.factory() as session:
        ids = list(session.scalars(select(Message.id).order_by(Message.created_at, Message.id)))
    assert ids != sorted(ids)


def expected_ids(
    db, created: tuple[datetime | None, datetime | None] = (None, None), **where: str
) -> list[int]:
    """The ledger's ids newest first, as the Messages page orders them: by ``created_at``,
    then id; only the rows created in ``[from, to)`` and with the values ``where`` names."""
    columns = {
        "channel": Message.channel,
        "status": Message.status,
        "reason": Message.reason,
        "user": Message.user_id,
        "step": Message.step_id,
    }
    stmt = select(Message.id).order_by(Message.created_at.desc(), Message.id.desc())
    for name, value in where.items():
        stmt = stmt.where(columns[name] == value)
    low, high = created
    if low is not None:
        stmt = stmt.where(Message.created_at >= low)
    if high is not None:
        stmt = stmt.where(Message.created_at < high)
    with db.factory() as session:
        return list(session.scalars(stmt))


def walk_pages(http, url: str) -> list[list[int]]:
    """Every page of the ledger from ``url`` on, following the "older" link."""
    pages = []
    while url:
        page = http.get(url).text
        pages.append([int(i) for i in re.findall(r'<tr data-message="(\d+)">', page)])
        link = re.search(r'<a rel="next" href="([^"]+)"', page)
        url = unescape(link.group(1)) if link else ""
    return pages


def test_messages_are_paged_newest_first_without_gaps_or_repeats(db, admin):
    http, _ = admin
    seed_ledger(db)
    pages = walk_pages(http, "/console/messages")
    assert [len(p) for p in pages] == [50, 50, 50, 10]
    assert [i for p in pages for i in p] == expected_ids(db)


def test_messages_filter_by_each_column_and_keep_filters_across_pages(db, admin):
    http, _ = admin
    seed_ledger(db)
    record_send(db, "other", "welcome_sms", "sent", journey_id="cart_abandonment")
    skipped = walk_pages(http, "/console/messages?status=skipped&reason=quiet_hours")
    assert [i for p in skipped for i in p] == expected_ids(
        db, status="skipped", reason="quiet_hours"
    )
    by_channel = walk_pages(http, "/console/messages?channel=sms")
    assert len(by_channel) == 2  # 54 SMS in the seed and one more: the filter spans pages
    assert [i for p in by_channel for i in p] == expected_ids(db, channel="sms")
    by_user = walk_pages(http, "/console/messages?user=u-3&step=welcome_sms")
    assert [i for p in by_user for i in p] == expected_ids(db, user="u-3", step="welcome_sms")
    assert by_user[0]
    journey = rows(http.get("/console/messages?journey=cart_abandonment").text, "message")
    other = str(max(expected_ids(db)))  # written last, created before the rest
    assert list(journey) == [other]
    assert " other " in journey[other]
    page = http.get("/console/messages").text
    assert '<option value="undelivered">undelivered</option>' in page
    assert '<option value="cart_abandonment">cart_abandonment</option>' not in page  # unpublished


def test_filtered_pages_list_each_row_once_in_creation_order(db, admin):
    http, _ = admin
    seed_shuffled_ledger(db)
    for query, where in (
        ("status=skipped", {"status": "skipped"}),
        ("reason=quiet_hours", {"reason": "quiet_hours"}),
        ("channel=sms", {"channel": "sms"}),
        ("journey=new_user_coupon&step=welcome_sms", {}),
        ("", {}),
    ):
        pages = walk_pages(http, f"/console/messages?{query}")
        expected = expected_ids(db, **where)
        assert [i for p in pages for i in p] == expected, query
        assert [len(p) for p in pages[:-1]] == [50] * (len(pages) - 1)
    assert len(expected_ids(db, channel="sms")) > 100  # the filter spans pages


def test_a_bad_cursor_is_a_clear_error(db, admin):
    http, _ = admin
    answer = http.get("/console/messages?before=yesterday")
    assert answer.status_code == 422
    # A saved link of an older page: the messages older than that row, in the page's order.
    seed_shuffled_ledger(db)
    newest = expected_ids(db)
    saved = walk_pages(http, f"/console/messages?before={newest[9]}")
    assert [i for p in saved for i in p] == newest[10:]
    missing = http.get(f"/console/messages?before={max(newest) + 1}")
    assert missing.status_code == 400
    assert f"No message #{max(newest) + 1} to page from" in unescape(missing.text)


def test_the_user_page_shows_profile_consent_enrollments_and_timeline(db, admin):
    http, _ = admin
    seed_journey(db)
    page = http.get("/console/users/u3").text
    assert "u3@example.com" in page
    timeline = re.findall(r'<tr data-kind="(\w+)"><td>[^<]*</td><td>\w+</td><td>([^<]*)</td>', page)
    assert ("enrolled", "entered new_user_coupon v1 (treatment)") in timeline
    assert ("message", "sms welcome_sms (welcome_sms_template): skipped — frequency_cap") in [
        (k, unescape(t)) for k, t in timeline
    ]
    first = http.get("/console/users/u1").text
    assert re.search(
        r"<td>sms</td><td>marketing</td><td>unsubscribed</td><td>twilio_stop</td>", first
    )
    assert "converted" in first
    assert http.get("/console/users/nobody").status_code == 404
    found = http.get("/console/users?id=u3")
    assert found.headers["location"] == "/console/users/u3"


def test_the_report_has_the_numbers_of_lifecycle_report_and_a_chart(db, admin):
    http, _ = admin
    seed_journey(db)
    page = http.get("/console/reports/new_user_coupon").text
    groups = rows(page, "group")
    assert groups == {"treatment": "treatment 4 1 25.0%", "holdout": "holdout 1 0 0.0%"}
    assert rows(page, "step") == {"welcome_sms": "welcome_sms sms 2 0 0 1 frequency_cap, 1 holdout"}
    with db.factory() as session:
        report = journey_report(session, journey_id="new_user_coupon")
    terminal = Console(file=io.StringIO(), width=200)
    print_report(report, terminal)
    cli_lift = next(
        line for line in terminal.file.getvalue().splitlines() if line.startswith("lift:")
    )
    shown = " ".join(unescape(re.search(r'<p id="lift">(.*?)</p>', page, re.S).group(1)).split())
    assert shown == cli_lift

    chart = re.search(r'<svg[^>]*class="chart".*?</svg>', page, re.S).group(0)
    lines = dict(re.findall(r'<polyline class="[^"]+" data-group="(\w+)" points="([^"]+)"', chart))
    assert set(lines) == {"treatment", "holdout"}
    # Treatment went from 0 to 25% (the line rises: y shrinks); the holdout stayed at 0.
    treatment = [float(p.split(",")[1]) for p in lines["treatment"].split()]
    holdout = [float(p.split(",")[1]) for p in lines["holdout"].split()]
    assert len(treatment) == 2 and treatment[1] < treatment[0]
    assert holdout[0] == holdout[1] == treatment[0]

    listed = rows(http.get("/console/reports").text, "journey")
    # Then the money: nobody ordered, so no incremental GMV and the messages are lost.
    assert listed == {
        "new_user_coupon": "new_user_coupon 5 25.0% 0.0% +25.0% ¥0.00 -100.0% not yet"
    }
    assert http.get("/console/reports/nope").status_code == 404


def test_an_empty_journey_report_says_nobody_entered(db, admin):
    http, _ = admin
    publish_shipped(db.factory, "coupon_expiry", NOW)
    page = http.get("/console/reports/coupon_expiry").text
    assert "nobody has entered yet" in page


def test_every_page_escapes_what_users_and_marketers_wrote(db, admin):
    http, _ = admin
    nasty = "<script>alert(1)</script>"
    add_user(db.factory, nasty, NOW - timedelta(days=1), member_tier="<b>gold</b>")
    publish_shipped(db.factory, "new_user_coupon", NOW)
    enroll(db, nasty)
    record_send(db, nasty, "welcome_sms", "skipped", reason="frequency_cap")
    text = next(p for p in shipped_journey_files() if p.stem == "new_user_coupon").read_text()
    text = text.replace("name: 7-day new-user coupon", 'name: "<img src=x onerror=alert(1)>"')
    # Drawn into the diagram's SVG: a template name is text there too.
    text = text.replace("template: new_user_welcome_sms", 'template: "<img src=y>"')
    publish_text(db.factory, text, NOW)
    pages = [
        http.get("/console/messages").text,
        http.get("/console/users/" + nasty.replace("/", "%2F")).text,
        http.get("/console/journeys").text,
        http.get("/console/journeys/new_user_coupon").text,
        http.get("/console/audiences/new_users_7d").text,
    ]
    for page in pages:
        assert "<script>" not in page and "<img" not in page and "<b>gold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]
    assert "&lt;b&gt;gold&lt;/b&gt;" in pages[1]
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[2]
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[3]
    assert "&lt;img src=y&gt;</text>" in pages[3]
    # Links to the user carry the id percent-encoded.
    assert 'href="/console/users/%3Cscript%3Ealert%281%29%3C%2Fscript%3E"' in pages[0]
