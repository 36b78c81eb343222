"""The journey page shows each A/B test: how the entrants given each variant converted, and
each variant against the first with Newcombe's interval."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

from console_support import NOW, enroll, record_send
from sqlalchemy import update

from journey_support import publish_text
from store import stats
from store.db import transaction
from store.models import Message

AB = """\
id: ab_check
name: A/B check
trigger: {event: product_viewed}
goal: {event: order_placed, within: 3d}
steps:
  - id: nudge
    type: send
    channel: sms
    variants:
      - {id: plain, template: cart_low_stock_sms}
      - {id: urgent, template: cart_low_stock_sms}
"""


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def seed(db, groups: dict[str, tuple[int, int]]) -> None:
    """Per variant (entrants, converted): treatment entrants with a ledger row each; two
    holdout entrants who converted and must not count."""
    publish_text(db.factory, AB, NOW - timedelta(days=10))
    for variant, (entrants, converted) in groups.items():
        for i in range(entrants):
            user = f"{variant}-{i}"
            at = NOW - timedelta(days=1) if i < converted else None
            enrollment = enroll(db, user, "ab_check", converted=at)
            status = "sent" if i % 3 else "skipped"  # a skip still counts for its variant
            record_send(db, user, "nudge", status, journey_id="ab_check", enrollment_id=enrollment)
            set_variant(db, user, variant)
    for i in range(2):
        enroll(db, f"held-{i}", "ab_check", group="holdout", converted=NOW - timedelta(days=1))


def set_variant(db, user: str, variant: str) -> None:
    with transaction(db.factory) as session:
        session.execute(update(Message).where(Message.user_id == user).values(variant=variant))


def test_each_variant_against_the_first(db, admin):
    http, _ = admin
    seed(db, {"plain": (40, 4), "urgent": (40, 14)})
    page = http.get("/console/journeys/ab_check").text
    rows = dict(re.findall(r'<tr data-variant="([^"]+)">(.*?)</tr>', page, re.S))
    assert text(rows["plain"]).split()[:4] == ["plain", "40", "4", "10.0%"]
    low, high = stats.newcombe(14, 40, 4, 40)
    assert text(rows["urgent"]) == (
        f"urgent 40 14 35.0% {100 * stats.wilson(14, 40)[0]:.1f}–"
        f"{100 * stats.wilson(14, 40)[1]:.1f}% +25.0 {100 * low:+.1f} to {100 * high:+.1f}"
    )
    assert low > 0
    verdict = re.search(r'data-variant-verdict="nudge">(.*?)</p>', page, re.S)
    assert verdict and text(verdict.group(1)) == (
        "urgent converts better than plain (95% interval above 0)"
    )


def test_a_small_test_says_how_many_entrants_it_needs(db, admin):
    http, _ = admin
    seed(db, {"plain": (20, 4), "urgent": (20, 6)})
    page = http.get("/console/journeys/ab_check").text
    verdict = re.search(r'data-variant-verdict="nudge">(.*?)</p>', page, re.S)
    assert verdict
    needed = re.search(r"about ([\d,]+) entrants per variant", text(verdict.group(1)))
    assert needed, verdict.group(1)
    h = stats.cohens_h(6 / 20, 4 / 20)
    expected = stats.entrants_for_power(h)
    assert expected is not None
    assert int(needed.group(1).replace(",", "")) == int(expected + 0.999)


def test_a_journey_without_variants_shows_no_ab_section(db, admin):
    http, _ = admin
    publish_text(db.factory, AB.replace("ab_check", "plain_check"), NOW - timedelta(days=1))
    assert "A/B variants" not in http.get("/console/journeys/plain_check").text
