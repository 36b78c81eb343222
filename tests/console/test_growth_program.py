"""The Growth page ends with the program's lift against the global control group, in the
same words as ``lifecycle kpi``."""

from __future__ import annotations

import re
from datetime import timedelta

from console_support import NOW, console_client, log_in
from test_growth_page import text

from journey_support import add_user, store_event
from store.program import in_global_control


def seed(db) -> list[str]:
    users = [f"p{i}" for i in range(30)]
    for i, user in enumerate(users):
        add_user(db.factory, user, NOW - timedelta(days=120))
        if i % 3 == 0:
            store_event(
                db.factory,
                user,
                "order_placed",
                NOW - timedelta(days=20),
                properties={"total_fen": 4_000},
            )
    return users


def test_the_program_section_against_the_control(db):
    users = seed(db)
    control = [u for u in users if in_global_control(u, percent=40, salt="global-control")]
    http = console_client(db, global_control_percent=40)
    log_in(http)
    page = http.get("/console/growth").text
    heading = re.search(r'<p id="program-heading">(.*?)</p>', page, re.S)
    assert heading and "(40% of users, sent no marketing message)" in text(heading.group(1))
    users_line = re.search(r'<p class="muted" id="program-users">(.*?)</p>', page, re.S)
    assert users_line
    assert f"{len(users) - len(control)} exposed" in users_line.group(1)
    assert f"{len(control)} in control" in users_line.group(1)
    rows = dict(re.findall(r'<tr data-program="([^"]+)">(.*?)</tr>', page, re.S))
    assert {"conversion (points)", "ROI", "30-day retention of signups"} <= set(rows)
    assert re.search(r'<p id="program-split"[^>]*>split: \d+ of 30 users in control', page)


def test_without_a_control_group_the_page_says_how_to_get_one(db, admin):
    http, _ = admin
    seed(db)
    page = http.get("/console/growth").text
    assert "LIFECYCLE_GLOBAL_CONTROL_PERCENT is 0" in page
    assert 'id="program-heading"' not in page
