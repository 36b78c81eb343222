"""A broadcast's money review on fixed data: recipients against the held out, per recipient,
over the attribution window; the numbers worked out by hand and equal to
:func:`store.uplift.compare` on the same entrants; provisional until the window closes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from conftest import Database
from money_support import COSTS, LONG_SMS, T0, day, order

from cli import main
from cli.broadcast import print_review
from store.broadcast_money import BroadcastMoney, broadcast_money
from store.db import transaction
from store.models import Broadcast, Coupon, Message, OutboxMessage, User
from store.uplift import Entrant, compare

TREATED = [f"t{i}" for i in range(6)]
HELD = [f"h{i}" for i in range(4)]


def seed(db: Database, *, status: str = "completed", holdout: float = 40) -> int:
    """Six recipients (t5 unsubscribed: skipped, still treated) and four held out, reached
    at T0 (h3 an hour later); the broadcast's id.

    In the 7-day window: t0 ¥100 paid with a ¥20 engine coupon, t1 ¥50 (in yuan), t5 ¥30,
    h0 ¥40 paid with a ¥10 engine coupon. Not in it: t1's order on day 8, t2's the hour
    before it was reached, and an order of someone the broadcast never reached.
    """
    with transaction(db.factory) as session:
        row = Broadcast(
            name="618 pre-heat",
            audience={"rule": {"tier": "gold"}},
            template="sale_preheat_sms",
            channel="sms",
            send_at=T0,
            status=status,
            workflow_id=f"broadcast:{status}",
            created_at=T0,
            holdout=holdout,
        )
        session.add(row)
        for uid in [*TREATED, *HELD, "stranger"]:
            phone = "+14155550100" if uid == "t1" else "+8613800138000"
            session.add(User(id=uid, phone=phone, traits={}, tags=[], created_at=T0, updated_at=T0))
        session.flush()
        for uid in TREATED + HELD:
            status_, reason = "sent", None
            if uid == "t5":
                status_, reason = "skipped", "unsubscribed"
            elif uid in HELD:
                status_, reason = "skipped", "held_out"
            session.add(
                Message(
                    idempotency_key=f"run-1/{uid}",
                    broadcast_id=row.id,
                    step_id=row.workflow_id,
                    user_id=uid,
                    channel="sms",
                    template="sale_preheat_sms",
                    status=status_,
                    reason=reason,
                    created_at=T0 + timedelta(hours=1) if uid == "h3" else T0,
                )
            )
        session.add(
            OutboxMessage(
                message_key="run-1/t0", channel="sms", recipient="+8613800138000",
                body=LONG_SMS, data={}, created_at=T0,
            )
        )  # fmt: skip
        for code, uid, amount in (("C-t0", "t0", 2000), ("C-h0", "h0", 1000)):
            session.add(
                Coupon(
                    issue_key=f"{uid}/coupon", code=code, user_id=uid, journey_id="welcome",
                    amount_fen=amount, issued_at=day(-3), expires_at=day(30),
                    redeemed_at=day(1),
                )
            )  # fmt: skip
        session.add_all(
            [
                order("t0", "o1", day(1), total_fen=10000, coupon_code="C-t0"),
                order("t1", "o2", day(2), total=50),
                order("t1", "o3", day(8), total_fen=9900),
                order("t2", "o4", T0 - timedelta(hours=1), total_fen=7700),
                order("t5", "o5", day(3), total_fen=3000),
                order("h0", "o6", day(1), total_fen=4000, coupon_code="C-h0"),
                order("stranger", "o7", day(1), total_fen=8800),
            ]
        )
        return row.id


def review(db: Database, broadcast_id: int, now: datetime) -> BroadcastMoney:
    with db.factory() as session:
        return broadcast_money(session, broadcast_id=broadcast_id, costs=COSTS, now=now)


def test_the_review_is_worked_out_by_hand_and_equals_uplift_on_the_same_entrants(db):
    broadcast_id = seed(db)
    money = review(db, broadcast_id, day(30)).report.journey

    # SMS: t0 two segments at ¥0.05, t1 one at the +1 price ¥0.60, t2-t4 one each.
    message_fen = 2 * 5 + 60 + 3 * 5
    assert (money.treatment.entrants, money.holdout.entrants) == (6, 4)
    assert (money.treatment.converted, money.holdout.converted) == (3, 1)
    assert (money.treatment.orders, money.holdout.orders) == (3, 1)
    assert money.treatment.gmv_fen == 12000 + 5000 + 3000  # before the coupon
    assert money.holdout.gmv_fen == 5000
    assert (money.treatment.coupon_fen, money.holdout.coupon_fen) == (2000, 1000)
    assert money.treatment.message_fen == message_fen
    assert money.holdout.message_fen == 0
    # The coupon cost beyond the holdout's per recipient: 2000 - 1000 / 4 * 6 = 500.
    assert money.spend_fen == message_fen + 500
    assert money.conversion.value == pytest.approx(3 / 6 - 1 / 4)
    assert money.incremental_orders.value == pytest.approx((3 / 6 - 1 / 4) * 6)
    assert money.incremental_gmv_fen.value == pytest.approx((20000 / 6 - 5000 / 4) * 6)
    margin = 12500 * COSTS.margin_rate
    assert money.incremental_margin_fen.value == pytest.approx(margin)
    assert money.roi.value == pytest.approx((margin - 585) / 585)
    assert money.cost_per_incremental_order_fen.value == pytest.approx(585 / 1.5)

    def entrant(uid: str, orders: int = 0, gmv: int = 0, coupon: int = 0, sms: float = 0):
        group = "holdout" if uid in HELD else "treatment"
        return Entrant(group, uid, orders > 0, orders, gmv, coupon, sms)

    by_hand = [
        entrant("t0", 1, 12000, 2000, 10),
        entrant("t1", 1, 5000, 0, 60),
        entrant("t2", sms=5),
        entrant("t3", sms=5),
        entrant("t4", sms=5),
        entrant("t5", 1, 3000),
        entrant("h0", 1, 5000, 1000),
        *(entrant(uid) for uid in HELD[1:]),
    ]
    label = f"broadcast {broadcast_id}"
    assert money == compare(label, by_hand, margin_rate=COSTS.margin_rate, spend_fen=585)


def test_the_review_is_provisional_until_the_window_closes(db):
    broadcast_id = seed(db)
    closes = T0 + timedelta(days=7, hours=1)  # a week after the last recipient (h3)
    early, late = review(db, broadcast_id, day(3)), review(db, broadcast_id, closes)
    assert (early.closes_at, early.closed) == (closes, False)
    assert (late.closes_at, late.closed) == (closes, True)
    assert late.as_dict()["provisional"] is False
    assert early.as_dict()["closes_at"] == closes.isoformat()
    # The split: 4 of 10 held out against 40% configured.
    ratio = late.report.sample_ratio
    assert ratio is not None and (ratio.holdout, ratio.total, ratio.mismatch) == (4, 10, False)


def test_a_running_broadcast_has_no_closing_time_yet(db):
    broadcast_id = seed(db, status="running")
    running = review(db, broadcast_id, day(30))
    assert (running.closes_at, running.closed) == (None, False)


def test_without_a_holdout_only_the_attributed_orders(db):
    broadcast_id = seed(db, holdout=0)
    with transaction(db.factory) as session:  # as if nobody had been held out
        session.query(Message).filter(Message.reason == "held_out").delete()
    no_holdout = review(db, broadcast_id, day(30))
    money = no_holdout.report.journey
    assert not no_holdout.has_holdout
    assert no_holdout.report.sample_ratio is None
    assert (money.treatment.entrants, money.treatment.orders) == (6, 3)
    assert money.roi.value is None and money.roi.note() == "no holdout to compare with"


def status(db: Database, monkeypatch: pytest.MonkeyPatch, capsys, broadcast_id: int) -> str:
    """``lifecycle broadcast status ID``'s output (a closed broadcast: Temporal not asked)."""
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", db.url)
    monkeypatch.setenv("LIFECYCLE_ENVIRONMENT", "development")
    assert main(["broadcast", "status", str(broadcast_id)]) == 0
    return capsys.readouterr().out


def test_status_prints_the_review_once_the_window_has_closed(sqlite_db, monkeypatch, capsys):
    out = status(sqlite_db, monkeypatch, capsys, seed(sqlite_db))
    assert "ledger: sent 5, skipped (held_out) 4, skipped (unsubscribed) 1" in out
    assert (
        "money review (orders 7d after each recipient was reached; the window closed "
        "2026-03-08 03:00Z)" in out
    )
    assert "PROVISIONAL" not in out
    assert "the coupon cost beyond the holdout's" in out
    lines = out.splitlines()
    assert any(line.split("│")[1:5] == [" treatment ", "        6 ", "         3 ", "      3 "]
               for line in lines)  # fmt: skip
    assert any(line.startswith("broadcast ") and ": ROI +" in line for line in lines)
    assert "split: 4 of 10 users held out (40.0%) against 40% configured" in out


def test_status_without_a_holdout_says_roi_needs_one(sqlite_db, monkeypatch, capsys):
    broadcast_id = seed(sqlite_db, holdout=0)
    with transaction(sqlite_db.factory) as session:
        session.query(Message).filter(Message.reason == "held_out").delete()
    out = status(sqlite_db, monkeypatch, capsys, broadcast_id)
    assert "ROI needs a holdout: start a broadcast with --holdout 5" in out
    assert (
        "6 recipient(s), 3 bought, 3 order(s), GMV ¥200.00, coupon cost ¥20.00, "
        "message cost ¥0.30" in out
    )
    assert "ROI +" not in out


def test_status_marks_the_numbers_provisional_until_the_window_closes(db, capsys):
    broadcast_id = seed(db)
    print_review(review(db, broadcast_id, day(3)))
    out = capsys.readouterr().out
    assert out.startswith(
        "money review, PROVISIONAL until 2026-03-08 03:00Z (orders 7d after each recipient "
        "was reached)"
    )
    assert "split: 4 of 10 users held out" in out
