"""A control run (the journey's holdout, the global control group) is given no coupon: no
coupon row, no ``coupon_issued`` event, and the run's result says which coupon steps were
withheld and why. It walks the same steps at the same times as an exposed run; a held-out
run recorded before coupons were withheld still replays."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio import activity
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from test_journey_fake_activities import FakeActivities, journey_workers, offsets

from config import Settings
from enrollment.router import JourneyRouter
from journey_support import (
    add_user,
    enrollments,
    ledger,
    publish_shipped,
    settled,
    store_event,
    user_in,
)
from journeys.validate import parse_journey
from store.models import Coupon, Event
from store.program import in_global_control
from store.reports import journey_report
from worker import WORKFLOWS, running_worker, sandbox_runner
from workflows.ids import journey_workflow_id
from workflows.journey import JourneyWorkflow
from workflows.journey_contracts import (
    PREPARE_SEND,
    DeliverInput,
    DeliverResult,
    EventSignal,
    JourneyInput,
    JourneyResult,
)

JOURNEY = "new_user_coupon"
HISTORIES = Path(__file__).parent / "histories"

COUPON_CONTEXT = """\
id: coupon_context
name: a coupon read by later steps
trigger: {event: user_signed_up}
steps:
  - {id: coupon, type: issue_coupon, amount: 20, min_spend: 50, valid_for: 7d}
  - id: big
    type: branch
    if: {context: coupon.amount_fen, gte: 2000}
    then:
      - {id: big_sms, type: send, channel: sms, template: big_sms}
    else:
      - {id: small_sms, type: send, channel: sms, template: small_sms}
  - {id: before_expiry, type: wait_until, at: coupon.expires_at - 1d}
  - {id: last_push, type: send, channel: push, template: last_push}
"""


class CouponSeeingFakes(FakeActivities):
    """The fakes, also recording the coupon each send was asked with."""

    def __init__(self) -> None:
        super().__init__()
        self.coupon_ids: list[int | None] = []

    @activity.defn(name=PREPARE_SEND)
    async def prepare_send(self, inp: DeliverInput) -> DeliverResult:
        self.coupon_ids.append(inp.coupon_id)
        return await super().prepare_send(inp)


@pytest.mark.parametrize(
    ("group", "global_control", "withheld"),
    [
        ("treatment", False, {}),
        ("holdout", False, {"coupon": "held_out"}),
        ("treatment", True, {"coupon": "global_control"}),
    ],
)
async def test_a_control_run_reads_the_coupon_it_was_not_given_as_an_exposed_run_does(
    time_env, task_queue, group, global_control, withheld
):
    fakes = CouponSeeingFakes()
    async with journey_workers(time_env, fakes, task_queue):
        t0 = await time_env.get_current_time()
        handle = await time_env.client.start_workflow(
            JourneyWorkflow.run,
            JourneyInput(
                journey=parse_journey(COUPON_CONTEXT),
                journey_version=1,
                enrollment_id=7,
                user_id="u-1",
                group=group,
                trigger=EventSignal(message_id="m-1", event="user_signed_up", timestamp=t0),
                global_control=global_control,
            ),
            id=journey_workflow_id("coupon_context", task_queue),
            task_queue=task_queue,
        )
        result = await handle.result()

    assert result.withheld == withheld
    assert len(fakes.coupons) == (0 if withheld else 1)
    # The branch and the wait read the coupon's amount and expiry either way.
    assert result.steps == ["coupon", "big", "big_sms", "before_expiry", "last_push"]
    assert offsets(fakes, t0) == [
        ("big_sms/1", "sms", timedelta(0)),
        ("last_push/1", "push", timedelta(days=6)),
    ]
    # A withheld coupon is no coupon to the policy (no expiry to check, none to render).
    assert fakes.coupon_ids == ([None, None] if withheld else [1, 1])


def coupons_and_announcements(db, user_id: str) -> tuple[list[Coupon], list[Event]]:
    with db.factory() as session:
        coupons = list(session.scalars(select(Coupon).where(Coupon.user_id == user_id)))
        events = session.scalars(
            select(Event).where(Event.user_id == user_id, Event.event == "coupon_issued")
        )
        return coupons, list(events)


async def run_new_users(time_env, db, settings: Settings, task_queue: str, users: list[str]):
    """Sign ``users`` up for new_user_coupon through the router ``settings`` ask for; their
    runs' results, once the goal window has closed."""
    now = await time_env.get_current_time()
    publish_shipped(db.factory, JOURNEY, now)
    router = JourneyRouter.from_settings(
        settings, factory=db.factory, client=time_env.client, task_queue=task_queue
    )
    async with running_worker(time_env.client, settings, db.factory, task_queue=task_queue):
        for user in users:
            add_user(db.factory, user, now)
            await router.route([store_event(db.factory, user, "user_signed_up", now)])
        for user in users:
            await settled(db, user, 1)
        await time_env.sleep(timedelta(days=8))
        results: list[JourneyResult] = []
        for user in users:
            handle = time_env.client.get_workflow_handle_for(
                JourneyWorkflow.run, journey_workflow_id(JOURNEY, user)
            )
            results.append(await handle.result())
    return results


def development(**fields) -> Settings:
    # Triggers stamped with the test server's clock, which runs ahead of the wall clock.
    return Settings(environment="development", max_trigger_age=timedelta(days=3650), **fields)


async def test_a_held_out_entrant_gets_no_coupon_and_a_treatment_entrant_does(
    time_env, sqlite_db, task_queue
):
    db = sqlite_db
    held = user_in("holdout", f"cc-held-{task_queue}")
    treated = user_in("treatment", f"cc-treated-{task_queue}")
    held_result, treated_result = await run_new_users(
        time_env, db, development(), task_queue, [held, treated]
    )

    assert coupons_and_announcements(db, held) == ([], [])
    assert held_result.withheld == {"welcome_coupon": "held_out"}
    assert {(r.status, r.reason) for r in ledger(db.factory, held)} == {("skipped", "held_out")}
    coupons, announced = coupons_and_announcements(db, treated)
    assert [(c.journey_id, c.amount_fen) for c in coupons] == [(JOURNEY, 2000)]
    assert [e.properties["coupon_code"] for e in announced] == [coupons[0].code]
    assert treated_result.withheld == {}
    assert [r.status for r in ledger(db.factory, treated)] == ["sent", "sent", "sent"]


PERCENT, SALT = 10, "cc-salt"


async def test_a_global_control_user_gets_no_coupon(time_env, sqlite_db, task_queue):
    db = sqlite_db
    settings = development(global_control_percent=PERCENT, global_control_salt=SALT)
    treated = (user_in("treatment", f"cc-gc{i}-{task_queue}") for i in range(10_000))
    user = next(u for u in treated if in_global_control(u, percent=PERCENT, salt=SALT))
    (result,) = await run_new_users(time_env, db, settings, task_queue, [user])

    assert coupons_and_announcements(db, user) == ([], [])
    assert result.withheld == {"welcome_coupon": "global_control"}
    # The run walked the journey's treatment (its own split); the program held it out of
    # everything, as its enrollment records: the journey's report sets it aside.
    assert enrollments(db.factory, user)[0].group == "global_control"
    history = await time_env.client.get_workflow_handle(
        journey_workflow_id(JOURNEY, user)
    ).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    run_input = json.loads(started.input.payloads[0].data)
    assert (run_input["group"], run_input["global_control"]) == ("treatment", True)
    assert {(r.status, r.reason) for r in ledger(db.factory, user)} == {
        ("skipped", "global_control")
    }
    with db.factory() as session:
        report = journey_report(session, journey_id=JOURNEY)
    assert (report.entered, report.set_aside) == ({}, 1)


def events_of(history: WorkflowHistory) -> list[str]:
    """The activities a history scheduled and the patches it recorded, in order."""
    found = []
    for event in json.loads(history.to_json())["events"]:
        for key, value in event.items():
            if key.endswith("Attributes") and "activityType" in value:
                found.append(value["activityType"]["name"])
            if key.endswith("Attributes") and value.get("markerName") == "core_patch":
                found.append("patch")
    return found


async def test_a_held_out_run_recorded_when_it_issued_its_coupon_still_replays():
    before = HISTORIES / "new_user_coupon_holdout_issued_coupon.json"
    history = WorkflowHistory.from_json(before.stem, before.read_text())
    started = history.events[0].workflow_execution_started_event_attributes
    assert json.loads(started.input.payloads[0].data)["group"] == "holdout"
    assert events_of(history)[0] == "issue_coupon"  # the old behaviour, as recorded
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )
    await replayer.replay_workflow(history)
    after = HISTORIES / "new_user_coupon_holdout.json"
    assert "issue_coupon" not in events_of(WorkflowHistory.from_json(after.stem, after.read_text()))
