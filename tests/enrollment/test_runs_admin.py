"""Who is where in a journey, and ejecting runs, on the time-skipping server with the real
worker: each run reported at its step with what it waits for and until when; ejected runs end
as ``ejected`` with the fact naming who and why, a held send is never sent, nobody else is
touched."""

from __future__ import annotations

from datetime import timedelta

import pytest
from runs_support import JOURNEY_ID, ejections, exited, journey_running, settled_where
from temporalio.client import Client, Interceptor, OutboundInterceptor, SignalWorkflowInput
from temporalio.service import RPCError, RPCStatusCode

from enrollment.runs_admin import NO_ANSWER, RunsAdmin, UnknownJourney, UnknownStep
from journey_support import add_enrollment, enrollments, ledger, outbox
from store.reports import user_timeline
from workflows.ids import journey_workflow_id
from workflows.journey import JourneyWorkflow
from workflows.journey_contracts import EjectSignal

USERS = {"w1": "wechat", "w2": "wechat", "n1": "email", "n2": "email", "p1": "phone"}


async def test_where_reports_each_run_at_its_step_and_eject_ends_only_the_chosen(
    time_env, db, task_queue
):
    env = time_env
    users = {f"{u}-{task_queue}": method for u, method in USERS.items()}
    w1, w2, n1, n2, p1 = users
    admin = RunsAdmin(factory=db.factory, client=env.client)
    async with journey_running(env, db, task_queue, users) as t0:
        where = await admin.where(JOURNEY_ID)
        assert (where.open, where.asked, where.sampled) == (5, 5, False)
        assert [s.step for s in where.steps] == [
            "route",
            "await_view",
            "by_phone",
            "held_push",
            "nap",
        ]
        waiting = where.at("await_view")
        assert [r.user_id for r in waiting.runs] == sorted([w1, w2])
        for run in waiting.runs:
            assert run.position is not None
            assert (run.position.waiting, run.position.event) == ("event", "product_viewed")
            assert run.position.until is not None
            assert abs(run.position.until - (t0 + timedelta(days=3))) < timedelta(minutes=1)
        napping = where.at("nap")
        assert napping.count == napping.estimate == 2
        assert napping.earliest is not None and napping.latest is not None
        assert abs(napping.earliest - (t0 + timedelta(days=2))) < timedelta(minutes=1)
        held = where.at("held_push").runs[0]
        assert held.user_id == p1 and held.position is not None
        assert held.position.waiting == "send"
        assert held.position.until is not None and held.position.until > t0
        assert [m.status for m in ledger(db.factory, p1)] == ["pending"]

        one = await admin.eject(
            JOURNEY_ID, user_ids=[n1, "nobody"], actor="ops-alice", reason="asked to stop", now=t0
        )
        assert [r.user_id for r in one.runs] == [n1] and one.not_open == ["nobody"]
        at_step = await admin.eject(
            JOURNEY_ID, step="await_view", actor="console", reason="wrong offer", now=t0
        )
        assert sorted(r.user_id for r in at_step.runs) == sorted([w1, w2])
        held_one = await admin.eject(
            JOURNEY_ID, user_ids=[p1], actor="ops-alice", reason="complained", now=t0
        )
        assert [r.user_id for r in held_one.runs] == [p1]
        await exited(
            db.factory, {w1: "ejected", w2: "ejected", n1: "ejected", p1: "ejected", n2: None}
        )
        after = await settled_where(admin, {"nap": 1})
        assert [r.user_id for r in after.at("nap").runs] == [n2]

    def fact(step: str, actor: str, reason: str) -> dict[str, str]:
        return {"journey_id": JOURNEY_ID, "step": step, "actor": actor, "reason": reason}

    assert ejections(db.factory) == {
        n1: fact("nap", "ops-alice", "asked to stop"),
        w1: fact("await_view", "console", "wrong offer"),
        w2: fact("await_view", "console", "wrong offer"),
        p1: fact("held_push", "ops-alice", "complained"),
    }
    # The held send is given up, never sent; the run left no other message.
    assert [(m.step_id, m.status, m.reason) for m in ledger(db.factory, p1)] == [
        ("held_push", "skipped", "ejected")
    ]
    assert outbox(db.factory) == []
    with db.factory() as session:
        lines = [e.text for e in user_timeline(session, user_id=n1)]
    assert "ejected from who_is_where at nap by ops-alice: asked to stop" in lines
    assert f"exited {JOURNEY_ID}: ejected" in lines
    assert lines.index(f"exited {JOURNEY_ID}: ejected") > lines.index(
        "ejected from who_is_where at nap by ops-alice: asked to stop"
    )


async def test_unknown_journey_and_step_are_refused(time_env, sqlite_db, task_queue):
    admin = RunsAdmin(factory=sqlite_db.factory, client=time_env.client)
    now = await time_env.get_current_time()
    with pytest.raises(UnknownJourney, match="no journey 'nope' is published or shipped"):
        await admin.where("nope")
    with pytest.raises(UnknownStep, match="journey 'new_user_coupon' has no step 'nope'"):
        await admin.eject("new_user_coupon", step="nope", actor="a", reason="r", now=now)


async def test_a_run_that_does_not_answer_is_counted_apart(time_env, sqlite_db):
    """An open enrollment whose workflow is gone (closed and deleted): reported as not
    answering, the others still shown; ejecting it passes it by."""
    now = await time_env.get_current_time()
    add_enrollment(sqlite_db.factory, "ghost", now)
    admin = RunsAdmin(factory=sqlite_db.factory, client=time_env.client)
    where = await admin.where("new_user_coupon")
    assert where.open == 1
    assert [r.user_id for r in where.at(NO_ANSWER).runs] == ["ghost"]
    done = await admin.eject("new_user_coupon", user_ids=["ghost"], actor="a", reason="r", now=now)
    assert done.runs == [] and ejections(sqlite_db.factory) == {}
    assert [e.exited_at for e in enrollments(sqlite_db.factory, "ghost")] == [None]


async def test_a_large_journey_is_sampled_and_scaled(time_env, sqlite_db):
    now = await time_env.get_current_time()
    for i in range(30):
        add_enrollment(sqlite_db.factory, f"ghost-{i}", now)
    admin = RunsAdmin(factory=sqlite_db.factory, client=time_env.client)
    where = await admin.where("new_user_coupon", sample=10)
    assert (where.open, where.asked, where.sampled) == (30, 10, True)
    gone = where.at(NO_ANSWER)
    assert (gone.count, gone.estimate) == (10, 30)


class RefuseSignalsTo(Interceptor):
    """The real client, except that Temporal is made to refuse a signal to one workflow id
    (as a permission or rate-limit error would): the SDK's own extension point."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        refused = self.workflow_id

        class Refusing(OutboundInterceptor):
            async def signal_workflow(self, input: SignalWorkflowInput) -> None:
                if input.id == refused:
                    raise RPCError("refused", RPCStatusCode.PERMISSION_DENIED, b"")
                await super().signal_workflow(input)

        return Refusing(next)


async def test_a_run_temporal_refuses_never_keeps_the_others_from_ejection(
    time_env, sqlite_db, task_queue
):
    users = {f"{u}-{task_queue}": method for u, method in (("n1", "email"), ("n2", "email"))}
    n1, n2 = users
    async with journey_running(time_env, sqlite_db, task_queue, users) as t0:
        client = Client(
            **{
                **time_env.client.config(),
                "interceptors": [RefuseSignalsTo(journey_workflow_id(JOURNEY_ID, n2))],
            }
        )
        admin = RunsAdmin(factory=sqlite_db.factory, client=client)
        done = await admin.eject(JOURNEY_ID, user_ids=[n1, n2], actor="ops", reason="asked", now=t0)
        assert [r.user_id for r in done.runs] == [n1]
        assert [(r.user_id, why) for r, why in done.failed] == [(n2, "PERMISSION_DENIED: refused")]
        await exited(sqlite_db.factory, {n1: "ejected", n2: None})
    assert set(ejections(sqlite_db.factory)) == {n1}


async def test_an_ejection_whose_sender_died_before_recording_it_is_recorded_by_the_run(
    time_env, sqlite_db, task_queue
):
    """The signal got through but the process that sent it died before writing the fact:
    the run writes it as it exits, with the step it was at, once."""
    users = {f"n1-{task_queue}": "email"}
    [n1] = users
    async with journey_running(time_env, sqlite_db, task_queue, users):
        handle = time_env.client.get_workflow_handle_for(
            JourneyWorkflow.run, journey_workflow_id(JOURNEY_ID, n1)
        )
        await handle.signal(JourneyWorkflow.eject, EjectSignal(actor="ops-bob", reason="crash"))
        await exited(sqlite_db.factory, {n1: "ejected"})
    assert ejections(sqlite_db.factory) == {
        n1: {"journey_id": JOURNEY_ID, "step": "nap", "actor": "ops-bob", "reason": "crash"}
    }
