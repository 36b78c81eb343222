"""Money per broadcast: the post-campaign review of recipients against those held out.

Every member of the audience the broadcast reached has one ledger row: the treatment are
the rows of any outcome (sent, or skipped by the policy: the comparison is of those chosen
to receive it, as a journey's is of its entrants), the holdout the rows skipped
``held_out``. Each is followed for the **attribution window** (7 days unless asked
otherwise) from the instant its page reached it (the row's ``created_at``). Within it:

- **orders** are the user's ``order_placed`` events; **GMV** is each order's value before
  its coupon, as a journey's (:mod:`store.money`);
- **coupon cost** is the discount of the engine's coupons used on those orders; a broadcast
  issues none, so its **spend** counts only the coupon cost beyond the holdout's, per
  recipient (never below none), with the treatment's **message cost**, priced as a
  journey's messages are.

The comparison, its intervals and ROI are :func:`store.uplift.compare`'s, the split check
:func:`store.stats.sample_ratio_mismatch`. The window closes ``window`` after the last
recipient was reached, once the broadcast has ended; until then the numbers are provisional.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from journeys.durations import format_duration
from store import stats
from store.broadcasts import FINAL_STATUSES, HELD_OUT
from store.models import Broadcast, Event, Message, User
from store.money import (
    BILLED,
    DEFAULT_WINDOW,
    Costs,
    MoneyReport,
    coupon_amounts,
    engine_discount_fen,
    order_value_fen,
    with_outbox_body,
)
from store.uplift import Entrant, compare


@dataclass(frozen=True)
class BroadcastMoney:
    """A broadcast's review: the money of its recipients against its holdout's, and
    whether the attribution window has closed."""

    broadcast_id: int
    holdout: float  # the percent configured
    window: timedelta
    closes_at: datetime | None  # None while the broadcast still reaches recipients
    closed: bool
    report: MoneyReport

    @property
    def has_holdout(self) -> bool:
        return self.report.journey.holdout.entrants > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "broadcast_id": self.broadcast_id,
            "holdout": self.holdout,
            "window": format_duration(self.window),
            "closes_at": None if self.closes_at is None else self.closes_at.isoformat(),
            "provisional": not self.closed,
            "money": self.report.as_dict(),
        }


def broadcast_money(
    session: Session,
    *,
    broadcast_id: int,
    costs: Costs,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> BroadcastMoney:
    """The review of ``broadcast_id`` as of ``now``: per recipient, treatment against
    holdout, over ``window`` from the instant each was reached."""
    row = session.get_one(Broadcast, broadcast_id)
    reached = session.execute(
        with_outbox_body(
            select(
                Message.user_id,
                Message.created_at,
                Message.status,
                Message.reason,
                Message.channel,
                Message.segments,
                User.phone,
            )
        )
        .outerjoin(User, User.id == Message.user_id)
        .where(Message.broadcast_id == broadcast_id, Message.user_id.is_not(None))
    ).all()
    entrants: dict[str, Entrant] = {}
    since: dict[str, datetime] = {}
    for user_id, created_at, status, reason, channel, segments, phone, body in reached:
        assert user_id is not None  # selected so
        held = status == "skipped" and reason == HELD_OUT
        entrant = Entrant("holdout" if held else "treatment", user_id, converted=False)
        if status in BILLED:
            entrant.message_fen = costs.message(channel, phone=phone, segments=segments, body=body)
        entrants[user_id], since[user_id] = entrant, created_at
    if since:
        _attribute_orders(session, broadcast_id, entrants, since, window)
    money = compare(
        f"broadcast {broadcast_id}",
        list(entrants.values()),
        margin_rate=costs.margin_rate,
        spend_fen=_spend(list(entrants.values())),
    )
    closes_at = max(since.values()) + window if since and row.status in FINAL_STATUSES else None
    return BroadcastMoney(
        broadcast_id=broadcast_id,
        holdout=row.holdout,
        window=window,
        closes_at=closes_at,
        closed=closes_at is not None and now >= closes_at,
        report=MoneyReport(
            journey_id=f"broadcast {broadcast_id}",
            window=format_duration(window),
            costs=costs,
            journey=money,
            steps=[],
            sample_ratio=_sample_ratio(money.holdout.entrants, len(entrants), row.holdout),
        ),
    )


def _attribute_orders(
    session: Session,
    broadcast_id: int,
    entrants: dict[str, Entrant],
    since: dict[str, datetime],
    window: timedelta,
) -> None:
    """Each recipient's orders in its window: counted, their GMV and coupon discounts."""
    users = select(Message.user_id).where(Message.broadcast_id == broadcast_id)
    orders = session.execute(
        select(Event.user_id, Event.timestamp, Event.properties).where(
            Event.type == "track",
            Event.event == "order_placed",
            Event.user_id.in_(users),
            Event.timestamp >= min(since.values()),
            Event.timestamp < max(since.values()) + window,
        )
    ).all()
    coupons = coupon_amounts(session, (o.properties for o in orders))
    for user_id, timestamp, properties in orders:
        start = since.get(user_id)
        if start is None or not start <= timestamp < start + window:
            continue
        entrant = entrants[user_id]
        entrant.orders += 1
        entrant.converted = True
        entrant.gmv_fen += order_value_fen(properties, coupons)
        entrant.coupon_fen += engine_discount_fen(properties, coupons)


def _spend(entrants: list[Entrant]) -> float:
    """The treatment's message cost and the coupon cost beyond the holdout's (per recipient,
    scaled to the treatment; all of it without a holdout): a broadcast issues no coupon, so
    the discounts its recipients would have used anyway are not its doing."""
    treated = [e for e in entrants if e.group == "treatment"]
    held = [e for e in entrants if e.group == "holdout"]
    coupons = float(sum(e.coupon_fen for e in treated))
    if held:
        coupons -= sum(e.coupon_fen for e in held) / len(held) * len(treated)
    return math.fsum(e.message_fen for e in treated) + max(0.0, coupons)


def _sample_ratio(holdout: int, total: int, percent: float) -> stats.SampleRatio | None:
    """Recipients held out against the broadcast's ``holdout`` share; None without one."""
    share = percent / 100
    if not total or not 0 < share < 1:
        return None
    return stats.sample_ratio_mismatch(holdout=holdout, total=total, expected_share=share)
