"""Date ranges: the Messages page between two days, a journey's report from a day on, both
days in the default time zone (Asia/Shanghai)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

from console_support import NOW, enroll, record_send, seed_journey
from test_data_pages import expected_ids, rows, seed_shuffled_ledger, walk_pages

SHANGHAI_MIDNIGHT = datetime(2026, 6, 16, 16, 0, tzinfo=UTC)  # 17 June 00:00 in Shanghai


def test_messages_between_two_days(db, admin):
    http, _ = admin
    for i, at in enumerate(
        (
            SHANGHAI_MIDNIGHT - timedelta(minutes=1),  # 16 June, 23:59 in Shanghai
            SHANGHAI_MIDNIGHT,  # 17 June, 00:00
            SHANGHAI_MIDNIGHT + timedelta(hours=23, minutes=59),  # 17 June, 23:59
            SHANGHAI_MIDNIGHT + timedelta(days=1),  # 18 June, 00:00
        )
    ):
        record_send(db, f"u{i}", "welcome_sms", "sent", at=at)
    page = http.get("/console/messages?from=2026-06-17&to=2026-06-17").text
    users = sorted(re.findall(r"\b(u\d)\b", " ".join(rows(page, "message").values())))
    assert users == ["u1", "u2"]
    assert 'name="from" value="2026-06-17"' in page
    # Only one bound, and the bounds kept on the next page's link.
    assert len(rows(http.get("/console/messages?from=2026-06-17").text, "message")) == 3
    assert len(rows(http.get("/console/messages?to=2026-06-16").text, "message")) == 1
    assert http.get("/console/messages?from=someday").status_code == 404


def test_messages_pages_keep_their_days(db, admin):
    http, _ = admin
    for i in range(60):
        record_send(db, f"p{i}", "welcome_sms", "sent", at=NOW - timedelta(minutes=i))
    page = http.get("/console/messages?from=2026-06-18").text
    link = re.search(r'<a rel="next" href="([^"]+)"', page)
    assert link and "from=2026-06-18" in link.group(1)


def test_paging_through_days_lists_each_row_once_in_creation_order(db, admin):
    http, _ = admin
    seed_shuffled_ledger(db)  # two rows an hour from NOW (18 June, 10:00 in Shanghai) back
    pages = walk_pages(http, "/console/messages?from=2026-06-16&to=2026-06-17")
    days = (SHANGHAI_MIDNIGHT - timedelta(days=1), SHANGHAI_MIDNIGHT + timedelta(days=1))
    assert [len(p) for p in pages] == [50, 46]
    assert [i for p in pages for i in p] == expected_ids(db, created=days)
    # Only an upper bound, the rows before it spanning pages; and those of one status.
    walked = []
    for query, where in (("", {}), ("&status=sent", {"status": "sent"})):
        walked.append(walk_pages(http, f"/console/messages?to=2026-06-16{query}"))
        expected = expected_ids(db, created=(None, SHANGHAI_MIDNIGHT), **where)
        assert [i for p in walked[-1] for i in p] == expected, query
    assert [len(pages) for pages in walked] == [2, 1]


def test_a_report_from_a_day_on(db, admin):
    http, _ = admin
    seed_journey(db)  # four treatment entries and a held-out one, three days before NOW
    enroll(db, "late", entered=NOW - timedelta(hours=1))
    every = http.get("/console/reports/new_user_coupon").text
    recent = http.get("/console/reports/new_user_coupon?since=2026-06-18").text
    assert rows(every, "group")["treatment"].split()[1] == "5"
    assert rows(recent, "group")["treatment"].split()[1] == "1"
    assert "entries from 2026-06-18 00:00 Asia/Shanghai on" in recent
    answer = http.get("/console/reports/new_user_coupon?since=June")
    assert answer.status_code == 404
    assert "'June' is not a day (YYYY-MM-DD)." in unescape(answer.text)
