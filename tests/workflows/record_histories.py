"""Record the replay histories of the shipped journeys (``make histories``).

Run it when the interpreter changes on purpose; after a release the recorded files are kept
and incompatible changes go behind ``workflow.patched``. ``test_replay.py`` replays them.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent)]

from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from config import Settings, package_binary  # noqa: E402
from journey_support import add_user, publish_shipped, store_event, user_in  # noqa: E402
from store.db import make_engine, make_session_factory  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from triggers.router import JourneyRouter, workflow_id  # noqa: E402
from worker import running_worker  # noqa: E402

JOURNEY = "new_user_coupon"
# scenario name -> (holdout group, day the user orders or None)
SCENARIOS = {
    "new_user_coupon_completed": ("treatment", None),
    "new_user_coupon_converted_day3": ("treatment", 3),
    "new_user_coupon_holdout": ("holdout", None),
}


async def record() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(package_binary("temporal-test-server")),
    )
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/histories.db")
        upgrade(engine)
        factory = make_session_factory(engine)
        settings = Settings(environment="test")
        router = JourneyRouter(
            factory=factory,
            client=env.client,
            task_queue="histories",
            max_trigger_age=timedelta(days=3650),
        )
        async with running_worker(env.client, settings, factory, task_queue="histories"):
            publish_shipped(factory, JOURNEY, await env.get_current_time())
            for name, (group, order_day) in SCENARIOS.items():
                user = user_in(group, name)
                now = await env.get_current_time()
                add_user(factory, user, now)
                await router.route([store_event(factory, user, "user_signed_up", now)])
                handle = env.client.get_workflow_handle(workflow_id(JOURNEY, user))
                await asyncio.sleep(1)  # let the first sends settle before skipping time
                if order_day is not None:
                    await env.sleep(timedelta(days=order_day))
                    at = await env.get_current_time()
                    await router.route([store_event(factory, user, "order_placed", at)])
                await env.sleep(timedelta(days=8 - (order_day or 0)))
                await handle.result()
                history = await handle.fetch_history()
                (HERE / "histories" / f"{name}.json").write_text(history.to_json())
                print(f"recorded {name}")
        engine.dispose()
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
