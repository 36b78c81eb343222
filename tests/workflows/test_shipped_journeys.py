"""The shipped journeys' timelines on the time-skipping server, every exit path included."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select

from config import Settings
from journey_support import (
    add_user,
    at_rest,
    enrollments,
    ledger,
    outbox,
    publish_shipped,
    publish_text,
    router_for,
    run_history_lengths,
    settled,
    store_event,
    user_in,
)
from store.models import Event
from support import assert_eventually_async
from worker import running_worker
from workflows.contracts import EventSignal
from workflows.ids import journey_workflow_id
from workflows.journey import JourneyWorkflow

SECOND = timedelta(seconds=1)


async def send_event(env, db, router, user: str, event: str, **props) -> datetime:
    at = await env.get_current_time()
    await router.route([store_event(db.factory, user, event, at, properties=props)])
    return at


def result(env, journey: str, user: str, key: str = "") -> asyncio.Future:
    handle = env.client.get_workflow_handle_for(
        JourneyWorkflow.run, journey_workflow_id(journey, user, key)
    )
    return handle.result()


def sends(db, user: str) -> list[tuple[str | None, str, str]]:
    return [(m.step_id, m.channel, m.status) for m in ledger(db.factory, user)]


def offsets(db, user: str, origin: datetime) -> dict[str | None, timedelta]:
    return {m.step_id: m.created_at - origin for m in ledger(db.factory, user)}


def close(a: timedelta, b: timedelta) -> bool:
    """Equal to within a few seconds: the time-skipping server only skips while every run is
    idle, so the real time activities take (longer on a loaded machine) shows up in the offsets."""
    return abs(a - b) < 10 * SECOND


CART_ITEMS = [{"product_id": "p1", "name": "保温杯", "price_fen": 9900, "quantity": 1}]


async def test_cart_low_stock_then_order_converts(time_env, sqlite_db, task_queue):
    db, env = sqlite_db, time_env
    user = user_in("treatment", f"cart-{task_queue}", "cart_abandonment")
    async with running_worker(
        env.client, Settings(environment="development"), db.factory, task_queue=task_queue
    ):
        t0 = await env.get_current_time()
        publish_shipped(db.factory, "cart_abandonment", t0)
        add_user(db.factory, user, t0)
        router = router_for(env, db, task_queue)
        await send_event(
            env, db, router, user, "cart_updated", cart_id="c1", items=CART_ITEMS, low_stock=True
        )
        await at_rest(env, db.factory, user)
        await env.sleep(timedelta(hours=30))
        await settled(db, user, 2)
        await send_event(env, db, router, user, "order_placed", order_id="o1", cart_id="c1")
        outcome = await result(env, "cart_abandonment", user, "c1")

    assert outcome.converted
    assert sends(db, user) == [("reminder_push", "push", "sent"), ("low_stock_sms", "sms", "sent")]
    at = offsets(db, user, t0)
    assert close(at["reminder_push"], timedelta(hours=1)), at
    assert close(at["low_stock_sms"], timedelta(hours=24)), at
    push = next(m for m in outbox(db.factory) if m.channel == "push")
    assert "保温杯" in (push.subject or "") + push.body


async def test_cart_update_restarts_the_clock_and_carts_are_separate(
    time_env, sqlite_db, task_queue
):
    db, env = sqlite_db, time_env
    user = user_in("treatment", f"cart2-{task_queue}", "cart_abandonment")
    async with running_worker(
        env.client, Settings(environment="development"), db.factory, task_queue=task_queue
    ):
        t0 = await env.get_current_time()
        publish_shipped(db.factory, "cart_abandonment", t0)
        add_user(db.factory, user, t0)
        router = router_for(env, db, task_queue)
        await send_event(env, db, router, user, "cart_updated", cart_id="c1", items=CART_ITEMS)
        await send_event(env, db, router, user, "cart_updated", cart_id="c2", items=CART_ITEMS)
        await at_rest(env, db.factory, user)
        await env.sleep(timedelta(minutes=30))
        t_restart = await send_event(
            env, db, router, user, "cart_updated", cart_id="c1", items=CART_ITEMS
        )
        await at_rest(env, db.factory, user)
        await env.sleep(timedelta(hours=2))
        # The order of cart c2 ends c2's run only.
        await send_event(env, db, router, user, "order_placed", order_id="o2", cart_id="c2")
        c2 = await result(env, "cart_abandonment", user, "c2")
        await env.sleep(timedelta(days=4))
        c1 = await result(env, "cart_abandonment", user, "c1")

    assert c2.converted and not c1.converted and c1.exit_reason == "completed"
    rows = [m for m in ledger(db.factory, user)]
    c1_rows = [
        m
        for m in rows
        if m.enrollment_id
        == next(e.id for e in enrollments(db.factory, user) if e.entry_key == "c1")
    ]
    assert [(m.step_id, m.status) for m in c1_rows] == [
        ("reminder_push", "sent"),
        ("coupon_sms", "sent"),
    ]
    # One hour after the *last* change of cart c1, not after the first.
    assert close(c1_rows[0].created_at - t_restart, timedelta(hours=1))
    assert close(c1_rows[1].created_at - t_restart, timedelta(hours=24))
    assert {e.entry_key for e in enrollments(db.factory, user)} == {"c1", "c2"}


async def test_a_cart_changed_again_and_again_continues_as_new_with_short_histories(
    time_env, sqlite_db, task_queue
):
    """Six changes of one cart, each after its push went out: the run continues as new
    once its history passes the limit (20 events here), and the ledger keys, the steps and
    the outcome go on as in one run."""
    db, env = sqlite_db, time_env
    user = user_in("treatment", f"cart3-{task_queue}", "cart_abandonment")
    # No frequency caps: every pass's push goes out.
    settings = Settings(environment="development", cap_sms_per_day=0, cap_marketing_per_week=0)
    async with running_worker(env.client, settings, db.factory, task_queue=task_queue):
        t0 = await env.get_current_time()
        publish_shipped(db.factory, "cart_abandonment", t0)
        add_user(db.factory, user, t0)
        router = router_for(env, db, task_queue, history_limit=20)
        for _ in range(6):
            await send_event(env, db, router, user, "cart_updated", cart_id="c1", items=CART_ITEMS)
            await at_rest(env, db.factory, user)
            await env.sleep(timedelta(hours=2))  # this pass's push goes out
            await at_rest(env, db.factory, user)
        await env.sleep(timedelta(days=4))
        c1 = await result(env, "cart_abandonment", user, "c1")
        rows = ledger(db.factory, user)
        first_run_id = rows[0].idempotency_key.split("/")[0]
        lengths = await run_history_lengths(
            env.client, journey_workflow_id("cart_abandonment", user, "c1"), first_run_id
        )

    assert (c1.exit_reason, c1.converted) == ("completed", False)
    assert [(m.step_id, m.status) for m in rows] == [("reminder_push", "sent")] * 6 + [
        ("coupon_sms", "sent")
    ]
    # One key per pass, all under the first run's id: nothing sent twice across runs.
    assert [m.idempotency_key for m in rows[:6]] == [
        f"{first_run_id}/reminder_push/{n}" for n in range(1, 7)
    ]
    assert c1.steps.count("reminder_push") == 6  # the steps of every run
    print(f"\nhistories of the runs: {lengths}")
    assert len(lengths) >= 3 and max(lengths) <= 60, lengths


async def test_coupon_expiry_nudges_before_expiry_then_ends(time_env, sqlite_db, task_queue):
    db, env = sqlite_db, time_env
    user = user_in("treatment", f"exp-{task_queue}", "coupon_expiry")
    async with running_worker(
        env.client, Settings(environment="development"), db.factory, task_queue=task_queue
    ):
        t0 = await env.get_current_time()
        publish_shipped(db.factory, "coupon_expiry", t0)
        add_user(db.factory, user, t0)
        router = router_for(env, db, task_queue)
        expires = t0 + timedelta(days=5)
        await send_event(
            env,
            db,
            router,
            user,
            "coupon_issued",
            coupon_code="C-1",
            amount_fen=2000,
            min_spend_fen=5000,
            expires_at=expires.isoformat(),
        )
        await at_rest(env, db.factory, user)
        await env.sleep(timedelta(days=6))
        outcome = await result(env, "coupon_expiry", user, "C-1")

    assert outcome.exit_reason == "exit_step" and not outcome.converted
    at = offsets(db, user, t0)
    assert close(at["nudge_48h"], timedelta(days=3)), at
    assert close(at["nudge_6h"], timedelta(days=5) - timedelta(hours=6)), at
    assert [s for s in sends(db, user)] == [
        ("nudge_48h", "push", "sent"),
        ("nudge_6h", "sms", "sent"),
    ]
    (enrollment,) = enrollments(db.factory, user)
    assert abs(enrollment.exited_at - expires) < 5 * SECOND


async def test_coupon_redeemed_converts_and_stops_nudges(time_env, sqlite_db, task_queue):
    db, env = sqlite_db, time_env
    user = user_in("treatment", f"red-{task_queue}", "coupon_expiry")
    async with running_worker(
        env.client, Settings(environment="development"), db.factory, task_queue=task_queue
    ):
        t0 = await env.get_current_time()
        publish_shipped(db.factory, "coupon_expiry", t0)
        add_user(db.factory, user, t0)
        router = router_for(env, db, task_queue)
        await send_event(
            env,
            db,
            router,
            user,
            "coupon_issued",
            coupon_code="C-2",
            amount_fen=1000,
            expires_at=(t0 + timedelta(days=5)).isoformat(),
        )
        await at_rest(env, db.factory, user)
        await env.sleep(timedelta(days=4))
        await send_event(
            env,
            db,
            router,
            user,
            "coupon_redeemed",
            coupon_code="C-2",
            amount_fen=1000,
            order_id="o9",
        )
        outcome = await result(env, "coupon_expiry", user, "C-2")

    assert outcome.converted
    assert [s[0] for s in sends(db, user)] == ["nudge_48h"]


async def test_new_user_coupon_starts_its_expiry_nudges(time_env, sqlite_db, task_queue):
    db, env = sqlite_db, time_env
    user = user_in("treatment", f"chain-{task_queue}")
    async with running_worker(
        env.client, Settings(environment="development"), db.factory, task_queue=task_queue
    ):
        t0 = await env.get_current_time()
        publish_shipped(db.factory, "new_user_coupon", t0)
        publish_shipped(db.factory, "coupon_expiry", t0)
        add_user(db.factory, user, t0)
        router = router_for(env, db, task_queue)
        await send_event(env, db, router, user, "user_signed_up")
        await settled(db, user, 1)

        # The coupon the journey issued was announced as coupon_issued and routed by the
        # worker as soon as it was stored: nothing is left for the pending-event loop.
        def announced_routed() -> bool:
            with db.factory() as session:
                stmt = select(Event.routed_at).where(
                    Event.user_id == user, Event.event == "coupon_issued"
                )
                return session.scalar(stmt) is not None

        await assert_eventually_async(announced_routed, timeout=10, interval=0.1)
        assert await router.route_pending(older_than=timedelta(0)) == 0
        runs = {e.journey_id: e for e in enrollments(db.factory, user)}
        assert set(runs) == {"new_user_coupon", "coupon_expiry"}
        await env.sleep(timedelta(days=8))
        expiry = await result(env, "coupon_expiry", user, runs["coupon_expiry"].entry_key)

    assert expiry.exit_reason == "exit_step"
    at = offsets(db, user, t0)
    assert close(at["nudge_48h"], timedelta(days=5)), at  # the coupon is valid 7 days


async def test_dormancy_push_then_sms_unless_they_come_back(time_env, sqlite_db, task_queue):
    db, env = sqlite_db, time_env
    stays_away = user_in("treatment", f"dorm-a-{task_queue}", "dormancy_wakeup")
    comes_back = user_in("treatment", f"dorm-b-{task_queue}", "dormancy_wakeup")
    async with running_worker(
        env.client, Settings(environment="development"), db.factory, task_queue=task_queue
    ):
        t0 = await env.get_current_time()
        publish_shipped(db.factory, "dormancy_wakeup", t0)
        router = router_for(env, db, task_queue)
        for user in (stays_away, comes_back):
            add_user(db.factory, user, t0 - timedelta(days=90))
            sweep = EventSignal(message_id=f"sweep:{user}", event="audience_sweep", timestamp=t0)
            assert await router.enter("dormancy_wakeup", user, trigger=sweep)
            await router.enter("dormancy_wakeup", user, trigger=sweep)  # a retried sweep page
            assert len(enrollments(db.factory, user)) == 1
        await settled(db, stays_away, 1)
        await settled(db, comes_back, 1)
        await env.sleep(timedelta(days=1))
        await send_event(env, db, router, comes_back, "session_started", channel="app")
        await env.sleep(timedelta(days=15))
        away = await result(env, "dormancy_wakeup", stays_away)
        back = await result(env, "dormancy_wakeup", comes_back)

    assert back.converted and sends(db, comes_back) == [("offer_push", "push", "sent")]
    assert not away.converted and away.exit_reason == "completed"
    assert sends(db, stays_away) == [("offer_push", "push", "sent"), ("offer_sms", "sms", "sent")]
    assert close(offsets(db, stays_away, t0)["offer_sms"], timedelta(days=3))


LANGUAGE = """\
id: language_check
name: language check
trigger: {event: product_viewed}
goal: {event: order_placed, within: 3d}
steps:
  - {id: gift, type: issue_coupon, amount: 5, min_spend: 20, valid_for: 3d}
  - id: ab
    type: send
    channel: sms
    variants:
      - {id: a, template: cart_low_stock_sms, weight: 1}
      - {id: b, template: cart_low_stock_sms, weight: 1}
    fallback: email
    fallback_template: new_user_last_chance_email
  - {id: pause, type: wait, duration: 1h}
  - id: wait_cart
    type: wait_for
    event: cart_updated
    where: {total_fen: {gte: 5000}}
    timeout: 1d
    on_event:
      - {id: got_cart, type: send, channel: push, template: cart_reminder_push}
    on_timeout:
      - {id: no_cart, type: exit}
  - id: vip
    type: branch
    if: {audience: {tier: 金卡}}
    then:
      - {id: vip_push, type: send, channel: push, template: coupon_expiry_48h_push}
"""


async def test_wait_for_sees_an_event_that_came_before_it_and_fallback(
    time_env, sqlite_db, task_queue
):
    db, env = sqlite_db, time_env
    user = f"lang-{task_queue}"
    async with running_worker(
        env.client, Settings(environment="development"), db.factory, task_queue=task_queue
    ):
        t0 = await env.get_current_time()
        publish_text(db.factory, LANGUAGE, t0)
        add_user(db.factory, user, t0, phone=None, member_tier="金卡")
        router = router_for(env, db, task_queue)
        viewed = await send_event(env, db, router, user, "product_viewed", product_id="p1")
        await settled(db, user, 2)
        await env.sleep(timedelta(minutes=30))
        # Arrives during the 1h pause, before wait_for starts: it still counts. A small cart
        # (under ¥50) does not match the filter.
        await send_event(env, db, router, user, "cart_updated", cart_id="k", total_fen=1000)
        await send_event(env, db, router, user, "cart_updated", cart_id="k", total_fen=8000)
        await at_rest(env, db.factory, user)
        await env.sleep(timedelta(days=4))
        outcome = await result(env, "language_check", user)

    rows = ledger(db.factory, user)
    assert [(m.step_id, m.channel, m.status, m.reason) for m in rows] == [
        ("ab", "sms", "skipped", "unreachable"),
        ("ab", "email", "sent", None),  # the fallback
        ("got_cart", "push", "sent", None),
        ("vip_push", "push", "sent", None),
    ]
    assert rows[0].variant in ("a", "b") and rows[1].variant == rows[0].variant
    assert close(rows[2].created_at - viewed, timedelta(hours=1))
    assert outcome.exit_reason == "completed"


async def test_wait_for_times_out_into_its_own_steps(time_env, sqlite_db, task_queue):
    db, env = sqlite_db, time_env
    user = f"lang2-{task_queue}"
    async with running_worker(
        env.client, Settings(environment="development"), db.factory, task_queue=task_queue
    ):
        t0 = await env.get_current_time()
        publish_text(db.factory, LANGUAGE, t0)
        add_user(db.factory, user, t0)
        router = router_for(env, db, task_queue)
        await send_event(env, db, router, user, "product_viewed", product_id="p1")
        await settled(db, user, 1)
        await env.sleep(timedelta(days=3))
        outcome = await result(env, "language_check", user)

    assert outcome.exit_reason == "exit_step"
    assert [m.step_id for m in ledger(db.factory, user)] == ["ab"]
    (enrollment,) = enrollments(db.factory, user)
    assert close(enrollment.exited_at - t0, timedelta(hours=25))
