"""A fixed population of new_user_coupon entrants whose money is worked out by hand: the
data behind the money report's tests (store, CLI, console)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import Database

from journeys.validate import load_journey, shipped_journey_files
from store.db import transaction
from store.journeys import publish
from store.models import Coupon, Enrollment, Event, Message, OutboxMessage, User
from store.money import Costs
from workflows.ids import journey_workflow_id

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
COSTS = Costs(
    sms_segment_fen=5, email_fen=2, push_fen=1, margin_rate=0.3,
    sms_segment_fen_by_country={"+1": 60},
)  # fmt: skip
TREATMENT = [f"t{i}" for i in range(6)]
HOLDOUT = [f"h{i}" for i in range(4)]
# 80 Chinese characters: UCS-2, two segments (70 fit in one).
LONG_SMS = "新人专享满五十减二十优惠券已到账" * 5


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def order(user_id: str, key: str, at: datetime, **properties: Any) -> Event:
    return Event(
        message_id=key,
        type="track",
        user_id=user_id,
        event="order_placed",
        properties={"order_id": key} | properties,
        context={},
        timestamp=at,
        received_at=at,
    )


def ledger(user_id: str, enrollment_id: int, step: str, channel: str, status: str) -> Message:
    return Message(
        idempotency_key=f"{user_id}/{step}",
        enrollment_id=enrollment_id,
        journey_id="new_user_coupon",
        step_id=step,
        user_id=user_id,
        channel=channel,
        template=step,
        status=status,
        reason="held_out" if status == "skipped" else None,
        created_at=T0,
    )


def seed(db: Database) -> None:
    """Six treated and four held out of new_user_coupon (7-day window, 10% holdout).

    Orders in the window: t0 two (¥80 paid with its ¥20 journey coupon, then ¥50), t1 one of
    ¥300 (sent in yuan only); h0 one of ¥60 with a coupon the engine never issued. Not in
    it: t2's order on day 8, h1's the day before entering, t3's order that started its run.
    """
    path = next(p for p in shipped_journey_files() if p.stem == "new_user_coupon")
    with transaction(db.factory) as session:
        publish(session, journey=load_journey(path), source=path.read_text(), now=T0)
        for uid in TREATMENT + HOLDOUT:
            phone = "+14155550100" if uid == "t4" else "+8613800138000"
            session.add(User(id=uid, phone=phone, traits={}, tags=[], created_at=T0, updated_at=T0))
        session.flush()
        ids: dict[str, int] = {}
        for uid in TREATMENT + HOLDOUT:
            converted = day(1) if uid in ("t0", "t1", "h0") else None
            row = Enrollment(
                journey_id="new_user_coupon",
                journey_version=1,
                user_id=uid,
                group="treatment" if uid.startswith("t") else "holdout",
                workflow_id=journey_workflow_id("new_user_coupon", uid),
                trigger_message_id=f"{uid}-trigger",
                entered_at=T0,
                converted_at=converted,
            )
            session.add(row)
            session.flush()
            ids[uid] = row.id
            session.add(
                Coupon(
                    issue_key=f"{uid}/welcome_coupon",
                    code=f"NEW-{uid}",
                    user_id=uid,
                    journey_id="new_user_coupon",
                    amount_fen=2000,
                    min_spend_fen=5000,
                    issued_at=T0 + timedelta(seconds=1),
                    expires_at=day(7),
                    redeemed_at=day(1) if uid == "t0" else None,
                )
            )
        session.add_all(
            [
                order("t0", "o1", day(1), total_fen=8000, coupon_code="NEW-t0"),
                order("t0", "o2", day(3), total_fen=5000),
                order("t1", "o3", day(2), total=300),
                order("t2", "o4", day(8), total_fen=9900),
                order("t3", "t3-trigger", T0, total_fen=7700),
                order("h0", "o5", day(1), total_fen=6000, coupon_code="CAMP-1"),
                order("h1", "o6", day(-1), total_fen=4000),
            ]
        )
        for uid in TREATMENT:
            status = "skipped" if uid == "t5" else "delivered"
            session.add(ledger(uid, ids[uid], "welcome_sms", "sms", status))
            session.add(ledger(uid, ids[uid], "day2_push", "push", "sent"))
        session.add(ledger("t1", ids["t1"], "day6_email", "email", "bounced"))
        session.add(ledger("t2", ids["t2"], "day6_email", "email", "failed"))
        for uid in HOLDOUT:
            session.add(ledger(uid, ids[uid], "welcome_sms", "sms", "skipped"))
        session.add(
            OutboxMessage(
                message_key="t0/welcome_sms", channel="sms", recipient="+8613800138000",
                body=LONG_SMS, data={}, created_at=T0,
            )
        )  # fmt: skip
