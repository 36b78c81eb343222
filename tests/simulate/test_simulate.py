"""`lifecycle simulate`: the real journeys over a synthetic population on the time-skipping
server. Each simulation starts its own server, as the command does."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from rich.console import Console
from sqlalchemy import func, select

from cli import main
from config import Settings
from journeys.validate import load_journey, shipped_journey_files
from simulate.behaviour import parse_behaviour
from simulate.results import SimulationResult
from simulate.runner import run_simulation
from simulate.view import print_funnel
from store.db import make_engine, make_session_factory
from store.models import Enrollment, Event

QUIET = "21:00-08:00"
# Everyone signs up during the run; orders are rare unless a message arrived in the last
# week, when they are twenty times likelier: the lift must show in treatment vs holdout.
STRONG_LIFT = """
daily: {visit: 0.3, add_to_cart: 0.05, order: 0.01, coupon: 0}
lift: {factor: 20, days: 7}
population: {new: 1.0, dormant: 0}
"""


def shipped(*ids: str) -> list[tuple]:
    paths = {p.stem: p for p in shipped_journey_files()}
    return [(load_journey(paths[i]), paths[i].read_text()) for i in ids]


def settings() -> Settings:
    # Production's quiet hours, whatever the test environment says.
    return Settings(environment="development", quiet_hours=QUIET)


@pytest.fixture(scope="module")
async def new_users() -> SimulationResult:
    return await run_simulation(
        settings(),
        shipped("new_user_coupon"),
        users=80,
        days=4,
        seed=11,
        behaviour=parse_behaviour(STRONG_LIFT),
    )


def test_every_entrant_is_treatment_or_holdout_and_every_step_adds_up(new_users):
    (funnel,) = new_users.journeys
    entered = funnel.entered["treatment"] + funnel.entered["holdout"]

    assert entered == new_users.events["user_signed_up"] == 80
    assert funnel.entered["holdout"] > 0
    assert sum(funnel.exits.values()) == entered and "running" not in funnel.exits
    assert [s.step for s in funnel.steps] == ["welcome_sms", "day2_push", "day6_email"]
    for step in funnel.steps:
        for counts in (step.treatment, step.holdout):
            assert counts.sent + sum(counts.skipped.values()) + counts.failed == counts.reached
            assert counts.pending == 0
    # Everyone who entered reached the first send (its coupon comes first, no one waits).
    welcome = funnel.steps[0]
    assert welcome.treatment.reached == funnel.entered["treatment"]
    assert welcome.holdout.reached == funnel.entered["holdout"]


def test_the_holdout_group_is_sent_nothing(new_users):
    (funnel,) = new_users.journeys

    for step in funnel.steps:
        assert step.holdout.sent == 0
        assert step.holdout.skipped == {"held_out": step.holdout.reached}
        assert step.treatment.sent > 0


def test_no_marketing_send_falls_inside_quiet_hours(new_users):
    hours = new_users.send_hours

    assert hours.quiet_hours == QUIET
    assert hours.marketing_in_quiet_hours == 0
    assert sum(hours.by_hour[21:]) == sum(hours.by_hour[:8]) == 0
    # Signups late in the evening wait for the morning: the first hour after quiet hours
    # collects the deferred ones.
    assert hours.by_hour[8] == max(hours.by_hour)
    assert sum(hours.by_hour) == sum(s.treatment.sent for s in new_users.journeys[0].steps)


def test_a_strong_lift_shows_as_treatment_converting_more(new_users):
    (funnel,) = new_users.journeys

    assert funnel.rate["treatment"] > funnel.rate["holdout"] + 0.3, funnel.rate
    assert funnel.lift.absolute is not None and funnel.lift.absolute > 0.3


def test_the_sample_timeline_tells_one_run_from_entry_to_exit(new_users):
    sample = new_users.sample

    assert sample is not None and sample.group == "treatment"
    kinds = [line.kind for line in sample.timeline]
    assert kinds[0] == "event" and sample.timeline[0].text == "user_signed_up"
    assert kinds[-1] == "exit"
    sent = [line for line in sample.timeline if line.kind == "message" and "sent" in line.text]
    assert len(sent) >= 2
    assert all(not ("21:00" <= line.local_time or line.local_time < "08:00") for line in sent)


def test_the_command_prints_json_and_a_seed_replays_the_same_story(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_QUIET_HOURS", QUIET)
    # Which of two sends due at the same instant a shared frequency cap stops is the one
    # thing a seed cannot fix (the worker's order decides), so caps are off here.
    monkeypatch.setenv("LIFECYCLE_CAP_SMS_PER_DAY", "0")
    monkeypatch.setenv("LIFECYCLE_CAP_MARKETING_PER_WEEK", "0")
    args = ["--users", "20", "--days", "3", "--seed", "5"]
    journeys = ["journeys/new_user_coupon.yaml", "journeys/cart_abandonment.yaml"]

    assert main(["simulate", *journeys, *args, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["simulate", *journeys, *args, "--json"]) == 0
    second = json.loads(capsys.readouterr().out)

    for run in (first, second):
        run.pop("seconds")
    assert first == second
    assert [j["journey_id"] for j in first["journeys"]] == ["new_user_coupon", "cart_abandonment"]
    assert first["users"] == 20 and first["seed"] == 5
    assert len(first["send_hours"]["by_hour"]) == 24
    assert first["sample"]["journey_id"] == "new_user_coupon"


def test_the_command_prints_the_funnel_histogram_and_timeline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_QUIET_HOURS", QUIET)
    keep = tmp_path / "sim.db"

    code = main(
        ["simulate", "journeys/dormancy_wakeup.yaml", "--users", "40", "--days", "2"]
        + ["--keep-db", str(keep)]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "30-day dormancy wake-up (dormancy_wakeup)" in out
    assert "offer_push · push: sent / reached" in out
    assert "Sends by the user's local hour (quiet hours 21:00-08:00 marked ·)" in out
    assert "marketing sends inside quiet hours: 0" in out
    assert "Timeline of sim-" in out and "entered dormancy_wakeup v1 (treatment)" in out
    # The daily sweep (10:00 in Shanghai) entered users not seen for 30 days, and only them.
    engine = make_engine(f"sqlite:///{keep}")
    with make_session_factory(engine)() as session:
        entries = session.execute(
            select(Enrollment.user_id, Enrollment.entered_at).where(
                Enrollment.journey_id == "dormancy_wakeup"
            )
        ).all()
        assert entries
        for user_id, entered_at in entries:
            assert (entered_at.hour, entered_at.minute) == (2, 0)
            seen = session.scalar(
                select(func.count()).where(
                    Event.user_id == user_id,
                    Event.timestamp > entered_at - timedelta(days=30),
                    Event.timestamp < entered_at,
                )
            )
            assert seen == 0, user_id
    engine.dispose()


BROWSE_JOURNEY = """\
id: browse_nudge
name: Browse nudge
trigger:
  event: product_viewed
goal:
  event: order_placed
  within: 1d
steps:
  - id: nudge
    type: send
    channel: push
    template: cart_reminder_push
"""


def test_a_journey_the_population_never_triggers_says_why(tmp_path, capsys):
    path = tmp_path / "browse_nudge.yaml"
    path.write_text(BROWSE_JOURNEY)

    code = main(["simulate", str(path), "--users", "5", "--days", "1"])

    out = capsys.readouterr().out
    assert code == 0
    assert (
        "nobody entered: it starts on product_viewed, which the simulated users never send" in out
    )


async def test_the_global_control_is_set_aside_from_both_groups():
    result = await run_simulation(
        Settings(environment="development", quiet_hours=QUIET, global_control_percent=30),
        shipped("new_user_coupon"),
        users=40,
        days=3,
        seed=5,
        behaviour=parse_behaviour(STRONG_LIFT),
    )
    (funnel,) = result.journeys

    assert funnel.set_aside > 0
    arms = funnel.entered["treatment"] + funnel.entered["holdout"]
    assert arms + funnel.set_aside == result.events["user_signed_up"] == 40
    # The control's runs are in neither group's steps: no send there was skipped for it.
    welcome = funnel.steps[0]
    assert (welcome.treatment.reached, welcome.holdout.reached) == (
        funnel.entered["treatment"],
        funnel.entered["holdout"],
    )
    assert not any("global_control" in s.treatment.skipped for s in funnel.steps)
    console = Console(record=True, width=120)
    print_funnel(funnel, console)
    assert f"global control: {funnel.set_aside} set aside" in console.export_text()
