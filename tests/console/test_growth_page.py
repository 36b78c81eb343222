"""The Growth page shows each KPI as ``lifecycle kpi`` does, with its trend against the
target, and the signup cohorts as a heat map."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

from console_support import NOW

from journey_support import store_event

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEK = datetime(2026, 6, 8, tzinfo=SHANGHAI)  # the last complete week before NOW (Thu 18 June)


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def rows(page: str, attribute: str) -> dict[str, str]:
    return dict(re.findall(rf'<tr data-{attribute}="([^"]*)">(.*?)</tr>', page, re.S))


def seed(db) -> None:
    """The week of 8 June: four visitors, one of them ordered; four signups in the week of
    6 April, two of whom came back 30-59 days later."""
    for user in ("v1", "v2", "v3", "v4"):
        store_event(db.factory, user, "session_started", WEEK + timedelta(days=1))
    store_event(
        db.factory,
        "v1",
        "order_placed",
        WEEK + timedelta(days=2),
        properties={"order_id": "o1", "total_fen": 12000},
    )
    signup = datetime(2026, 4, 7, 9, tzinfo=SHANGHAI)
    for user in ("c1", "c2", "c3", "c4"):
        store_event(db.factory, user, "user_signed_up", signup)
    for user in ("c1", "c2"):
        store_event(db.factory, user, "session_started", signup + timedelta(days=40))


def test_growth_page_shows_each_kpi_against_its_target_with_a_trend(db, admin):
    http, _ = admin
    seed(db)
    page = http.get("/console/growth").text
    assert re.search(r'<a href="/console/growth" class="here">Growth</a>', page)
    kpis = rows(page, "kpi")
    assert set(kpis) == {
        "order_conversion",
        "first_order_7d",
        "retention_30d",
        "repurchase_90d",
        "repurchase_365d",
        "monthly_active_3_visits",
        "gmv",
        "average_order_value",
    }
    conversion = text(kpis["order_conversion"])
    assert conversion.startswith("order conversion (visitors who ordered) 2026-06-08 25.0%")
    assert "[4.6%, 69.9%] 1 of 4 3.5% met" in conversion
    assert text(kpis["retention_30d"]).startswith(
        "30-day retention (visit on days 30-59) 2026-04-06 50.0% [15.0%, 85.0%] 2 of 4 30.0% met"
    )
    assert "¥120.00 1 order no target" in text(kpis["gmv"])
    # c1 and c2 came back once in May: active, but not three times.
    assert text(kpis["monthly_active_3_visits"]).startswith(
        "monthly actives with 3+ visits 2026-05 0.0% [0.0%, 65.8%] 0 of 2 65.0% below"
    )

    # The trend: one point per complete week of the last 26, the target as a dashed line
    # below the latest value (25% against 3.5%), the weeks without visitors left out.
    svg = re.search(r"<svg[^>]*class=\"sparkline\".*?</svg>", kpis["order_conversion"], re.S)
    assert svg is not None
    target_y = float(re.search(r'class="target"[^>]*y1="([\d.]+)"', svg.group(0)).group(1))
    dot_y = float(re.search(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg.group(0)).group(1))
    assert dot_y < target_y  # higher on the page: above the target
    assert 'class="trend"' not in svg.group(0)  # one week with visitors: a dot, no line
    assert "26 weeks" in kpis["order_conversion"]


def test_cohort_heat_map(db, admin):
    http, _ = admin
    seed(db)
    cohorts = rows(http.get("/console/growth").text, "cohort")
    april = cohorts["2026-04-06"]
    cells = re.findall(r'<td class="num" style="([^"]*)">([^<]*)</td>', april)
    weeks = [share for _, share in cells[:8]]
    assert weeks == ["0%", "0%", "0%", "0%", "50%", "0%", "0%", "0%"]  # day 40: week 5
    later = re.findall(r'<td class="num" style="[^"]*">([^<]*)</td>', cohorts["2026-04-13"])
    assert later[7:9] == ["", ""]  # its week 8 and its 30-59 days are not over
    assert cells[8][1] == "50.0%"
    assert "0.44" in cells[4][0]  # a half-full cell is mid-blue; empty ones pale
    assert "0.08" in cells[0][0]
    june = cohorts["2026-06-08"]
    assert text(june) == "2026-06-08 0"  # no signups that week, nothing known yet


def test_growth_window_from_a_date(db, admin):
    http, _ = admin
    seed(db)
    page = http.get("/console/growth?since=2026-06-01").text
    assert "2 weeks" in rows(page, "kpi")["order_conversion"]
    assert rows(page, "cohort").keys() == {"2026-06-01", "2026-06-08"}
    assert http.get("/console/growth?since=someday").status_code == 404
    assert http.get("/console/growth?since=2026-07-01").status_code == 404


def test_growth_needs_a_login(db, http):
    answer = http.get("/console/growth")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login"
    assert NOW.tzinfo is not None
