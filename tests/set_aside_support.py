"""new_user_coupon entrants of whom some are in the global control group, entered through
the real enrollment (the decision recorded at entry): the data behind the tests that a
journey's report sets them aside from both arms (store, CLI, console)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from conftest import Database
from sqlalchemy import update

from enrollment.entries import enroll_many, holdout_group
from journeys.validate import load_journey, shipped_journey_files
from store.db import transaction
from store.journeys import publish
from store.models import Enrollment
from store.program import in_global_control
from workflows.journey_contracts import EventSignal

JOURNEY = "new_user_coupon"  # holdout: 10%
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
PERCENT, SALT = 50, "set-aside"
USERS = [f"sa{i}" for i in range(400)]


@dataclass(frozen=True)
class Population:
    control: list[str]  # in the global control group, whichever arm the journey's hash says
    treatment: list[str]  # the journey's arms, control users left out
    holdout: list[str]
    converted: set[str]


def signal(user_id: str) -> EventSignal:
    return EventSignal(message_id=f"{user_id}-signup", event="user_signed_up", timestamp=T0)


def seed(db: Database) -> Population:
    """Enter :data:`USERS` with half of all users in the global control group. Every control
    user converts (as if the journey mattered to them), as do the even-numbered treatment
    users and none of the holdout: counted in the treatment, the control would pull its
    rate towards theirs."""
    path = next(p for p in shipped_journey_files() if p.stem == JOURNEY)
    journey = load_journey(path)
    control = [u for u in USERS if in_global_control(u, percent=PERCENT, salt=SALT)]
    exposed = [u for u in USERS if u not in control]
    treatment = [u for u in exposed if holdout_group(JOURNEY, u, journey.holdout) == "treatment"]
    holdout = [u for u in exposed if u not in treatment]
    converted = set(control) | {u for u in treatment if int(u[2:]) % 2 == 0}
    with transaction(db.factory) as session:
        publish(session, journey=journey, source=path.read_text(), now=T0)
        session.flush()
        enroll_many(
            session,
            journey,
            1,
            USERS,
            {u: signal(u) for u in USERS},
            "",
            now=T0,
            global_control_percent=PERCENT,
            global_control_salt=SALT,
        )
        session.execute(
            update(Enrollment)
            .where(Enrollment.user_id.in_(sorted(converted)))
            .values(converted_at=T0 + timedelta(days=1))
        )
    return Population(control, treatment, holdout, converted)
