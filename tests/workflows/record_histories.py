"""Record the replay histories of the shipped journeys (``make histories``).

Run it when the interpreter changes on purpose; after a release the recorded files are kept
and incompatible changes go behind ``workflow.patched``. ``test_replay.py`` replays them.
Named scenarios (``record_histories.py new_user_coupon_holdout``) re-record only those.

A history recorded before a change it must survive is kept under a name no scenario writes:
``new_user_coupon_holdout_issued_coupon`` is a held-out run from before control runs
withheld their coupons (it issued one).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent)]

from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from config import Settings, package_binary  # noqa: E402
from enrollment.router import JourneyRouter  # noqa: E402
from journey_support import add_user, publish_shipped, store_event, user_in  # noqa: E402
from store.db import SessionFactory, make_engine, make_session_factory  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from worker import running_worker  # noqa: E402
from workflows.contracts import EventSignal  # noqa: E402
from workflows.ids import journey_workflow_id  # noqa: E402

Scenario = Callable[[WorkflowEnvironment, SessionFactory, JourneyRouter, str], Awaitable[str]]


async def _event(env, factory, router, user, event, **props) -> None:  # type: ignore[no-untyped-def]
    at = await env.get_current_time()
    await router.route([store_event(factory, user, event, at, properties=props)])


async def _settle_then(env: WorkflowEnvironment, days: float) -> None:
    await asyncio.sleep(1)  # let the first activities finish before skipping time
    await env.sleep(timedelta(days=days))


def new_user(group: str, order_day: int | None) -> Scenario:
    async def run(env, factory, router, name):  # type: ignore[no-untyped-def]
        user = user_in(group, name)
        add_user(factory, user, await env.get_current_time())
        await _event(env, factory, router, user, "user_signed_up")
        if order_day is not None:
            await _settle_then(env, order_day)
            await _event(env, factory, router, user, "order_placed", order_id="o1")
        await _settle_then(env, 8 - (order_day or 0))
        return journey_workflow_id("new_user_coupon", user)

    return run


async def cart_restart_then_order(env, factory, router, name):  # type: ignore[no-untyped-def]
    user = user_in("treatment", name, "cart_abandonment")
    add_user(factory, user, await env.get_current_time())
    items = [{"product_id": "p1", "name": "保温杯", "price_fen": 9900, "quantity": 1}]
    await _event(env, factory, router, user, "cart_updated", cart_id="c1", items=items)
    await _settle_then(env, 0.02)
    await _event(env, factory, router, user, "cart_updated", cart_id="c1", items=items)
    await _settle_then(env, 1.5)
    await _event(env, factory, router, user, "order_placed", order_id="o1", cart_id="c1")
    await _settle_then(env, 1)
    return journey_workflow_id("cart_abandonment", user, "c1")


async def cart_low_stock(env, factory, router, name):  # type: ignore[no-untyped-def]
    user = user_in("treatment", name, "cart_abandonment")
    add_user(factory, user, await env.get_current_time())
    await _event(env, factory, router, user, "cart_updated", cart_id="c9", low_stock=True)
    await _settle_then(env, 4)
    return journey_workflow_id("cart_abandonment", user, "c9")


async def coupon_expiry(env, factory, router, name):  # type: ignore[no-untyped-def]
    user = user_in("treatment", name, "coupon_expiry")
    now = await env.get_current_time()
    add_user(factory, user, now)
    expires = (now + timedelta(days=5)).isoformat()
    await _event(
        env,
        factory,
        router,
        user,
        "coupon_issued",
        coupon_code="K1",
        amount_fen=2000,
        expires_at=expires,
    )
    await _settle_then(env, 6)
    return journey_workflow_id("coupon_expiry", user, "K1")


async def dormancy(env, factory, router, name):  # type: ignore[no-untyped-def]
    user = user_in("treatment", name, "dormancy_wakeup")
    now = await env.get_current_time()
    add_user(factory, user, now - timedelta(days=60))
    sweep = EventSignal(message_id=f"sweep:{user}", event="audience_sweep", timestamp=now)
    await router.enter("dormancy_wakeup", user, trigger=sweep)
    await _settle_then(env, 1)
    await _event(env, factory, router, user, "session_started")
    await _settle_then(env, 1)
    return journey_workflow_id("dormancy_wakeup", user)


SCENARIOS: dict[str, Scenario] = {
    "new_user_coupon_completed": new_user("treatment", None),
    "new_user_coupon_converted_day3": new_user("treatment", 3),
    "new_user_coupon_holdout": new_user("holdout", None),
    "cart_abandonment_restart_then_order": cart_restart_then_order,
    "cart_abandonment_low_stock": cart_low_stock,
    "coupon_expiry_nudges": coupon_expiry,
    "dormancy_wakeup_came_back": dormancy,
}


async def record(names: list[str]) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(package_binary("temporal-test-server")),
    )
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/histories.db")
        upgrade(engine)
        factory = make_session_factory(engine)
        settings = Settings(environment="development")
        router = JourneyRouter(
            factory=factory,
            client=env.client,
            task_queue="histories",
            max_trigger_age=timedelta(days=3650),
        )
        async with running_worker(env.client, settings, factory, task_queue="histories"):
            now = await env.get_current_time()
            for journey in (
                "new_user_coupon",
                "cart_abandonment",
                "coupon_expiry",
                "dormancy_wakeup",
            ):
                publish_shipped(factory, journey, now)
            for name, scenario in SCENARIOS.items():
                if names and name not in names:
                    continue
                handle = env.client.get_workflow_handle(await scenario(env, factory, router, name))
                await handle.result()
                history = await handle.fetch_history()
                (HERE / "histories" / f"{name}.json").write_text(history.to_json())
                print(f"recorded {name}: {len(history.events)} events")
        engine.dispose()
    await env.shutdown()


if __name__ == "__main__":
    unknown = set(sys.argv[1:]) - set(SCENARIOS)
    if unknown:
        sys.exit(f"no scenario {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}")
    asyncio.run(record(sys.argv[1:]))
