"""A run's Temporal history keeps only the event properties its journey uses.

Temporal history is stored in plain text and ``lifecycle users forget`` cannot reach it, so a
phone number or a shipping address sent as an event property must stay in the events table.
"""

from __future__ import annotations

from datetime import timedelta

from config import Settings
from journey_support import add_user, at_rest, publish_shipped, router_for, store_event, user_in
from worker import running_worker
from workflows.ids import journey_workflow_id
from workflows.journey import JourneyWorkflow

PHONE = "+8613912345678"
ADDRESS = "88 Century Avenue, Pudong, Shanghai"
CART_ITEMS = [{"product_id": "p1", "name": "thermos", "price_fen": 9900, "quantity": 1}]


async def history_bytes(env, wid: str) -> bytes:
    """Every event of the run, as the server stores it (payload data is raw JSON bytes)."""
    history = await env.client.get_workflow_handle(wid).fetch_history()
    return b"".join(event.SerializeToString() for event in history.events)


async def test_histories_keep_only_the_properties_a_journey_uses(time_env, sqlite_db, task_queue):
    db, env = sqlite_db, time_env
    user = user_in("treatment", f"priv-{task_queue}", "cart_abandonment")
    async with running_worker(
        env.client, Settings(environment="development"), db.factory, task_queue=task_queue
    ):
        t0 = await env.get_current_time()
        publish_shipped(db.factory, "new_user_coupon", t0)
        publish_shipped(db.factory, "cart_abandonment", t0)
        add_user(db.factory, user, t0)
        router = router_for(env, db, task_queue)

        async def send(event: str, **properties) -> None:
            at = await env.get_current_time()
            await router.route([store_event(db.factory, user, event, at, properties=properties)])

        await send("user_signed_up", channel="app", method="phone", referrer_phone=PHONE)
        await send(
            "cart_updated",
            cart_id="cart-priv-1",
            items=CART_ITEMS,
            low_stock=True,
            shipping_address=ADDRESS,
        )
        await at_rest(env, db.factory, user)
        await env.sleep(timedelta(hours=2))
        # A goal event is signalled to the runs that listen for it: filtered the same way.
        await send("order_placed", order_id="o-1", cart_id="cart-priv-1", shipping_address=ADDRESS)
        cart = journey_workflow_id("cart_abandonment", user, "cart-priv-1")
        outcome = await env.client.get_workflow_handle_for(JourneyWorkflow.run, cart).result()
        signup = await history_bytes(env, journey_workflow_id("new_user_coupon", user))
        cart_history = await history_bytes(env, cart)

    assert outcome.converted
    assert PHONE.encode() not in signup
    assert b"referrer_phone" not in signup
    assert ADDRESS.encode() not in cart_history
    assert b"shipping_address" not in cart_history
    # What the journey does use still travels: the cart's key, its branch flag, its items
    # (the push names them) and the order's cart id (a goal of this cart, not another's).
    assert b"cart-priv-1" in cart_history
    assert b"low_stock" in cart_history
    assert b"thermos" in cart_history
