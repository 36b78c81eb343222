"""The Reports pages show each journey's money as ``lifecycle report`` does, with the
intervals drawn as error bars and the significance spelled out."""

from __future__ import annotations

import re
from html import unescape

import pytest
from console_support import console_client, log_in
from money_support import COSTS, seed

from devstack.money_view import roi_line
from store.reports import journey_report

PRICES = {
    "sms_cost_fen_per_segment": COSTS.sms_segment_fen,
    "sms_cost_fen_by_country": COSTS.sms_segment_fen_by_country,
    "email_cost_fen": COSTS.email_fen,
    "push_cost_fen": COSTS.push_fen,
    "margin_rate": COSTS.margin_rate,
}


def rows(page: str, attribute: str) -> dict[str, str]:
    found = re.findall(rf'<tr data-{attribute}="([^"]*)">(.*?)</tr>', page, re.S)
    return {
        unescape(key): " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())
        for key, body in found
    }


@pytest.fixture
def priced(db):
    seed(db)
    http = console_client(db, **PRICES)
    log_in(http)
    return http


def test_report_page_shows_money_with_error_bars_and_notes(db, priced):
    page = priced.get("/console/reports/new_user_coupon").text
    assert rows(page, "money") == {
        "treatment": "treatment 6 2 3 ¥450.00 ¥20.00 ¥0.93",
        "holdout": "holdout 4 1 1 ¥60.00 ¥0.00 ¥0.00",
    }
    differences = rows(page, "difference")
    assert differences["incremental GMV"] == "incremental GMV +¥360.00 (too few buyers) not yet"
    assert differences["ROI"] == "ROI +416.0% (too few buyers) not yet"
    assert differences["conversion (points)"].startswith("conversion (points) +8.3 [-")
    # One error bar per difference: the conversion's interval covers the 0 tick.
    bars = dict(
        re.findall(
            r'<tr data-difference="([^"]+)">.*?(<svg[^>]*class="error-bar".*?</svg>)', page, re.S
        )
    )
    conversion = bars["conversion (points)"]

    def ends(cls: str) -> list[float]:
        pattern = rf'class="{cls}" x1="([\d.]+)" x2="([\d.]+)"'
        return [float(v) for v in re.findall(pattern, conversion)[0]]

    low, high = ends("interval")
    assert low < ends("zero")[0] < high
    assert 'class="interval"' not in bars["ROI"]  # too few buyers: a value, no interval

    with db.factory() as session:
        report = journey_report(session, journey_id="new_user_coupon", costs=COSTS)
    assert report.money is not None
    roi = unescape(re.search(r'<p id="roi">(.*?)</p>', page, re.S).group(1))
    assert roi == roi_line(report.money.journey)
    assert "not significant yet (2 buyers treated, 1 held out" in roi
    split = unescape(re.search(r'<p id="split"[^>]*>(.*?)</p>', page, re.S).group(1))
    assert split.startswith("split: 4 of 10 users held out (40.0%) against 10% configured")
    assert rows(page, "money-step")["welcome_sms"].startswith("welcome_sms 6 4 +8.3 [-")


def test_reports_list_has_the_money_columns(priced):
    listed = rows(priced.get("/console/reports").text, "journey")
    assert listed == {
        "new_user_coupon": "new_user_coupon 10 33.3% 25.0% +8.3% +¥360.00 +416.0% not yet"
    }


def test_the_journey_page_shows_revenue_per_send_step_as_the_report_does(priced):
    report = rows(priced.get("/console/reports/new_user_coupon").text, "money-step")
    journey = priced.get("/console/journeys/new_user_coupon").text
    assert rows(journey, "step-money") == report
    assert report["welcome_sms"].startswith("welcome_sms 6 4 +8.3 [-")
    assert 'href="/console/journeys/new_user_coupon/versions"' in journey
    assert 'href="/console/journeys/new_user_coupon/draft"' in journey
    assert 'href="/console/journeys/new_user_coupon/builder"' in journey
