"""The global control group, and the whole program's lift measured against it.

A stable share of all users (``LIFECYCLE_GLOBAL_CONTROL_PERCENT``, chosen by a salted hash
of the user id, so a user stays in or out for as long as the share and the salt stay the
same) receives no marketing message from any journey or broadcast; transactional ones
still go. Everyone else is exposed to the program. Comparing the two groups over a window
measures what all journeys and broadcasts together add, which no single journey's holdout
can (a user held out of one journey still gets the others).

Over a window (default: the 90 days before now):

- **conversion**: the share of users who ordered in the window, and orders, GMV (before
  coupons) and ROI per user: the exposed group's coupons redeemed and messages billed in
  the window against the margin on the incremental GMV (:func:`store.uplift.compare`, with
  Newcombe's interval for the rate and a BCa bootstrap for money per user);
- **30-day retention**: of the users who signed up in the window early enough for their
  30-59 day window to have closed, the share who visited in it (Newcombe's interval);
- **repurchase**: of the window's buyers, the share who ordered twice or more.

The population is every user known before the window ends. A sample-ratio check compares
the control's realized share with the configured one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import stats
from store.kpi_queries import orders_by_user_query, retained_signups_query
from store.ledger import MARKETING
from store.models import Coupon, Message, User
from store.money import BILLED, Costs, with_outbox_body
from store.uplift import Entrant, Estimate, Money, compare

DEFAULT_WINDOW = timedelta(days=90)
BUCKETS = 10_000  # a share is kept to a hundredth of a percent


def control_bucket(user_id: str, *, salt: str) -> int:
    """The user's bucket, 0 to 9,999, the same for the same id and salt everywhere."""
    digest = hashlib.sha256(f"global-control\x00{salt}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_global_control(user_id: str, *, percent: float, salt: str) -> bool:
    """Whether ``user_id`` is in the global control group of ``percent`` % of users."""
    return percent > 0 and control_bucket(user_id, salt=salt) < round(percent * BUCKETS / 100)


@dataclass(frozen=True)
class Rate:
    """A share per group and the exposed group's lead over the control."""

    exposed: tuple[int, int]  # (x, n)
    control: tuple[int, int]
    difference: Estimate


@dataclass(frozen=True)
class ProgramReport:
    since: datetime
    until: datetime
    percent: float
    money: Money  # "treatment" is the exposed group, "holdout" the global control
    retention_30d: Rate
    repurchase: Rate
    sample_ratio: stats.SampleRatio | None

    def as_dict(self) -> dict[str, Any]:
        ratio = self.sample_ratio
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "global_control_percent": self.percent,
            "money": self.money.as_dict(),
            "retention_30d": _rate_dict(self.retention_30d),
            "repurchase": _rate_dict(self.repurchase),
            "sample_ratio": None
            if ratio is None
            else asdict(ratio)
            | {"realized_share": ratio.realized_share, "mismatch": ratio.mismatch},
        }


def _rate_dict(rate: Rate) -> dict[str, Any]:
    d = rate.difference
    return {
        "exposed": list(rate.exposed),
        "control": list(rate.control),
        "difference": {"value": d.value, "low": d.low, "high": d.high},
        "significant": d.significant,
        "note": d.note(),
    }


def program_report(
    session: Session,
    *,
    until: datetime,
    since: datetime | None = None,
    percent: float,
    salt: str,
    costs: Costs,
) -> ProgramReport:
    """The exposed users against the global control over ``since``..``until``."""
    since = since if since is not None else until - DEFAULT_WINDOW
    users = session.scalars(select(User.id).where(User.created_at < until)).all()
    group = {
        u: "holdout" if in_global_control(u, percent=percent, salt=salt) else "treatment"
        for u in users
    }
    entrants = {u: Entrant(g, u, False) for u, g in group.items()}
    for user_id, orders, fen in session.execute(orders_by_user_query(since, until)):
        entrant = entrants.get(user_id)
        if entrant is not None:
            entrant.converted, entrant.orders, entrant.gmv_fen = True, orders, round(fen or 0)
    coupons = select(Coupon.user_id, Coupon.amount_fen).where(
        Coupon.redeemed_at >= since, Coupon.redeemed_at < until
    )
    for user_id, amount in session.execute(coupons):
        if user_id in entrants:
            entrants[user_id].coupon_fen += amount
    sends = (
        with_outbox_body(select(Message.user_id, Message.channel, Message.segments, User.phone))
        .join(User, User.id == Message.user_id)
        .where(
            Message.topic == MARKETING,
            Message.status.in_(BILLED),
            Message.sent_at >= since,
            Message.sent_at < until,
        )
    )
    for user_id, channel, segments, phone, body in session.execute(sends):
        if user_id is not None:
            entrants[user_id].message_fen += costs.message(
                channel, phone=phone, segments=segments, body=body
            )
    money = compare("program", list(entrants.values()), margin_rate=costs.margin_rate)

    retained: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    dialect = session.get_bind().dialect.name
    for user_id, came_back in session.execute(retained_signups_query(since, until, dialect)):
        if user_id in group:
            counts = retained[group[user_id]]
            counts[0] += bool(came_back)
            counts[1] += 1
    bought = [e for e in entrants.values() if e.orders]
    again: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for e in bought:
        again[e.group][0] += e.orders >= 2
        again[e.group][1] += 1
    control = sum(1 for g in group.values() if g == "holdout")
    ratio = (
        stats.sample_ratio_mismatch(holdout=control, total=len(group), expected_share=percent / 100)
        if group and 0 < percent < 100
        else None
    )
    return ProgramReport(
        since=since,
        until=until,
        percent=percent,
        money=money,
        retention_30d=_rate(retained),
        repurchase=_rate(again),
        sample_ratio=ratio,
    )


def _rate(counts: dict[str, list[int]]) -> Rate:
    (xe, ne), (xc, nc) = counts.get("treatment", [0, 0]), counts.get("holdout", [0, 0])
    if not ne or not nc:
        return Rate((xe, ne), (xc, nc), Estimate(None))
    low, high = stats.newcombe(xe, ne, xc, nc)
    return Rate((xe, ne), (xc, nc), Estimate(xe / ne - xc / nc, low, high))
