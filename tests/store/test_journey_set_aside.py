"""A journey's treatment-against-holdout comparison leaves out the global control group's
entrants from both arms (they were sent nothing either way), says how many it set aside,
and keeps the decision made at entry however the share changes later."""

from __future__ import annotations

from conftest import Database
from set_aside_support import JOURNEY, USERS, seed, signal
from sqlalchemy import select

from console.queries import conversions_over_time, journey_totals
from enrollment.entries import enroll_many, holdout_group
from journeys.validate import load_journey, shipped_journey_files
from store import stats
from store.db import transaction
from store.models import Enrollment, Message
from store.money import Costs, money_report
from store.reports import journey_report
from store.variants import variant_tests


def test_the_report_sets_the_control_aside_from_both_arms(db: Database) -> None:
    population = seed(db)
    t, h = population.treatment, population.holdout
    assert population.control and t and h  # every kind of entrant is there

    with db.factory() as session:
        report = journey_report(session, journey_id=JOURNEY, costs=Costs())

    assert report.entered == {"treatment": len(t), "holdout": len(h)}
    assert report.converted == {
        "treatment": sum(u in population.converted for u in t),
        "holdout": 0,
    }
    assert report.set_aside == len(population.control)
    assert report.set_aside_line.startswith(f"global control: {len(population.control)} set aside")
    assert report.lift.absolute == report.converted["treatment"] / len(t)  # nobody held converted
    assert sum(report.exits.values()) == len(USERS)  # every run is still counted as a run
    money = report.money
    assert money is not None
    assert (money.journey.treatment.entrants, money.journey.holdout.entrants) == (len(t), len(h))
    assert money.journey.treatment.converted == report.converted["treatment"]
    assert money.set_aside == len(population.control)
    assert report.as_dict()["set_aside"] == len(population.control)


def test_the_sample_ratio_check_counts_only_the_arms(db: Database) -> None:
    population = seed(db)
    t, h = population.treatment, population.holdout

    with db.factory() as session:
        ratio = money_report(session, journey_id=JOURNEY, costs=Costs()).sample_ratio

    assert ratio is not None
    assert (ratio.holdout, ratio.total) == (len(h), len(t) + len(h))
    assert not ratio.mismatch
    # Counted as exposed, half of all users outside the holdout would look like a broken split.
    assert stats.sample_ratio_mismatch(
        holdout=len(h), total=len(USERS), expected_share=0.1
    ).mismatch


def test_the_console_totals_and_chart_leave_the_control_out(db: Database) -> None:
    population = seed(db)

    with db.factory() as session:
        totals = journey_totals(session, journey_id=JOURNEY)
        *_, point = conversions_over_time(session, journey_id=JOURNEY)

    assert (totals.entered, totals.set_aside) == (len(USERS), len(population.control))
    assert point.entered == {
        "treatment": len(population.treatment),
        "holdout": len(population.holdout),
    }
    assert point.rate("holdout") == 0.0


def test_a_retried_entry_keeps_the_decision_made_at_entry(db: Database) -> None:
    population = seed(db)
    journey = load_journey(next(p for p in shipped_journey_files() if p.stem == JOURNEY))
    someone = population.control[0]

    # The share is set to 0 since: the same trigger again finds the row entry recorded.
    with transaction(db.factory) as session:
        (entry,) = enroll_many(
            session,
            journey,
            1,
            [someone],
            {someone: signal(someone)},
            "",
            now=signal(someone).timestamp,
        )

    assert entry.global_control  # the run is told so: its coupons are withheld
    assert entry.group == holdout_group(JOURNEY, someone, journey.holdout)  # and keeps its arm
    with db.factory() as session:
        assert journey_report(session, journey_id=JOURNEY).set_aside == len(population.control)


def test_the_a_b_results_count_only_the_treatment_s_own(db: Database) -> None:
    population = seed(db)
    with transaction(db.factory) as session:
        for row in session.scalars(select(Enrollment).where(Enrollment.journey_id == JOURNEY)):
            session.add(
                Message(
                    idempotency_key=f"{row.user_id}/welcome_sms",
                    enrollment_id=row.id,
                    journey_id=JOURNEY,
                    step_id="welcome_sms",
                    variant="a" if int(row.user_id[2:]) % 2 else "b",
                    user_id=row.user_id,
                    channel="sms",
                    template="welcome_sms",
                    status="skipped" if row.group == "global_control" else "sent",
                    reason="global_control" if row.group == "global_control" else None,
                    created_at=row.entered_at,
                )
            )

    with db.factory() as session:
        (test,) = variant_tests(session, journey_id=JOURNEY)

    assert sum(r.entrants for r in test.variants) == len(population.treatment)
    odd = [u for u in population.treatment if int(u[2:]) % 2]
    by_name = {r.variant: r for r in test.variants}
    assert (by_name["a"].entrants, by_name["a"].converted) == (len(odd), 0)
