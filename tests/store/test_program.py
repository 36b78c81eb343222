"""The global control group: who is in it, and the program's lift against it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import Database

from journey_support import add_user, store_event
from store import stats
from store.db import transaction
from store.models import Coupon, Message
from store.money import Costs
from store.program import control_bucket, in_global_control, program_report
from store.uplift import Entrant, compare

UNTIL = datetime(2026, 6, 30, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=90)
SALT = "test-salt"


def test_membership_is_stable_and_near_the_share() -> None:
    ids = [f"user-{i}" for i in range(20_000)]
    members = [u for u in ids if in_global_control(u, percent=5, salt=SALT)]
    assert 0.045 < len(members) / len(ids) < 0.055
    assert members == [u for u in ids if in_global_control(u, percent=5, salt=SALT)]
    # A larger share keeps every member of a smaller one (buckets below a bound).
    assert set(members) <= {u for u in ids if in_global_control(u, percent=10, salt=SALT)}
    # Another salt draws another group; no share draws nobody.
    assert members != [u for u in ids if in_global_control(u, percent=5, salt="other")]
    assert not any(in_global_control(u, percent=0, salt=SALT) for u in ids)
    assert all(0 <= control_bucket(u, salt=SALT) < 10_000 for u in ids[:100])


def test_program_lift_against_the_control(db: Database) -> None:
    users = [f"u{i}" for i in range(60)]
    control = {u for u in users if in_global_control(u, percent=50, salt=SALT)}
    exposed = [u for u in users if u not in control]
    assert len(control) >= 15 and len(exposed) >= 15
    start = SINCE - timedelta(days=10)
    for u in users:
        add_user(db.factory, u, start)
    # Every third exposed user and every fifth control user orders; some twice.
    orders: dict[str, list[int]] = {}
    for i, u in enumerate(exposed):
        if i % 3 == 0:
            orders[u] = [10_000, 6_000] if i % 2 == 0 else [8_000]
    for i, u in enumerate(sorted(control)):
        if i % 5 == 0:
            orders[u] = [9_000]
    for u, values in orders.items():
        for k, fen in enumerate(values):
            at = SINCE + timedelta(days=5 + k)
            store_event(db.factory, u, "order_placed", at, properties={"total_fen": fen})
    store_event(  # before the window: not counted
        db.factory,
        exposed[1],
        "order_placed",
        SINCE - timedelta(days=1),
        properties={"total_fen": 99_999},
    )
    # Signups early in the window; those who came back 30-59 days later are retained.
    for i, u in enumerate(users[:40]):
        store_event(db.factory, u, "user_signed_up", SINCE + timedelta(days=1))
        if i % 2 == 0:
            store_event(db.factory, u, "session_started", SINCE + timedelta(days=40))
    # The exposed group's spend: a redeemed coupon and an SMS each for the first buyers.
    spenders = [u for u in exposed if u in orders][:3]
    with transaction(db.factory) as session:
        for u in spenders:
            at = SINCE + timedelta(days=5)
            session.add(
                Coupon(
                    issue_key=f"ik-{u}",
                    code=f"c-{u}",
                    user_id=u,
                    journey_id="j",
                    amount_fen=2_000,
                    min_spend_fen=5_000,
                    issued_at=at,
                    expires_at=at + timedelta(days=7),
                    redeemed_at=at,
                )
            )
            session.add(
                Message(
                    idempotency_key=f"k-{u}",
                    journey_id="j",
                    step_id="s",
                    user_id=u,
                    channel="sms",
                    template="t",
                    status="sent",
                    created_at=at,
                    sent_at=at,
                )
            )
    costs = Costs(sms_segment_fen=5.0)

    with db.factory() as session:
        report = program_report(
            session, until=UNTIL, since=SINCE, percent=50, salt=SALT, costs=costs
        )

    expected = compare(
        "program",
        [
            Entrant(
                "holdout" if u in control else "treatment",
                u,
                u in orders,
                orders=len(orders.get(u, [])),
                gmv_fen=sum(orders.get(u, [])),
                coupon_fen=2_000 if u in spenders else 0,
                message_fen=5.0 if u in spenders else 0.0,
            )
            for u in users
        ],
        margin_rate=costs.margin_rate,
    )
    assert report.money.treatment == expected.treatment
    assert report.money.holdout == expected.holdout
    assert report.money.conversion == expected.conversion
    assert report.money.gmv_per_entrant_fen.value == expected.gmv_per_entrant_fen.value
    assert report.money.spend_fen == 3 * (2_000 + 5.0)

    signed = users[:40]
    came_back = {u for i, u in enumerate(signed) if i % 2 == 0}
    xe = sum(1 for u in signed if u not in control and u in came_back)
    ne = sum(1 for u in signed if u not in control)
    xc = sum(1 for u in signed if u in control and u in came_back)
    nc = sum(1 for u in signed if u in control)
    assert (report.retention_30d.exposed, report.retention_30d.control) == ((xe, ne), (xc, nc))
    low, high = stats.newcombe(xe, ne, xc, nc)
    assert (report.retention_30d.difference.low, report.retention_30d.difference.high) == (
        low,
        high,
    )
    twice_e = sum(1 for u in exposed if len(orders.get(u, [])) >= 2)
    buyers_e = sum(1 for u in exposed if u in orders)
    buyers_c = sum(1 for u in control if u in orders)
    assert report.repurchase.exposed == (twice_e, buyers_e)
    assert report.repurchase.control == (0, buyers_c)
    assert report.sample_ratio is not None
    assert report.sample_ratio.holdout == len(control)
    assert report.as_dict()["global_control_percent"] == 50
