"""What happens at a tick of the simulated clock: schedule-triggered journeys enter their
audience's members, people sign up, and the users whose moment it is act, knowing what the
engine did to them (a message that reached them, the coupons they hold) from the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

import compose
from audiences.audience import Audience, shipped_audiences
from audiences.swept import swept_audience
from config import Settings
from enrollment.router import JourneyRouter
from journeys.models import Journey
from journeys.schedule import UnknownAudience, cron_trigger, next_tick, schedule_audience
from simulate.behaviour import Behaviour
from simulate.population import DayPlan, HeldCoupon, Person, act, identify, plan_day, track
from simulate.server import SimulationError
from store.db import SessionFactory
from store.models import Coupon, Enrollment, Message
from store.reports import SENT
from workflows.contracts import EventSignal
from workflows.ids import sweep_workflow_id

HOUR = timedelta(hours=1)


@dataclass
class Clock:
    """The simulated now, for the API's ``received_at`` and the router's trigger ages."""

    at: datetime

    def __call__(self) -> datetime:
        return self.at


@dataclass(frozen=True)
class Sweep:
    """A schedule-triggered journey: its cron, its audience and when it fires next."""

    journey: Journey
    trigger: Any  # an APScheduler CronTrigger
    audience: Audience
    next_fire: datetime | None


def saved_schedule_audiences(settings: Settings, journeys: list[Journey]) -> dict[str, Audience]:
    """The audiences saved in ``settings``' database (where the journeys would be published)
    that schedules name, by journey id: the latest version, as the sweep at a tick finds it.
    The database is read only when a schedule names an audience that is not shipped.

    Raises:
        SimulationError: a schedule names an audience nobody has; the message names the
            journey and the audiences there are.
    """
    shipped = shipped_audiences()
    named = [
        (j.id, j.trigger.schedule)
        for j in journeys
        if j.trigger.schedule is not None
        and isinstance(j.trigger.schedule.audience, str)
        and j.trigger.schedule.audience not in shipped
    ]
    if not named:
        return {}
    engine = compose.engine(settings)
    try:
        with compose.session_factory(settings, on=engine)() as session:
            found = {}
            for journey_id, schedule in named:
                try:
                    found[journey_id] = swept_audience(session, schedule).audience
                except UnknownAudience as exc:
                    raise SimulationError(f"journey {journey_id}: {exc}") from None
            return found
    finally:
        engine.dispose()


def sweeps_of(
    journeys: list[Journey], start: datetime, saved: Mapping[str, Audience] | None = None
) -> list[Sweep]:
    """The schedule-triggered journeys among ``journeys``, each due first at or after
    ``start``'s hour; ``saved`` holds the saved audiences schedules name, by journey id
    (:func:`saved_schedule_audiences`)."""
    saved = saved or {}
    return [
        Sweep(
            j,
            trig := cron_trigger(j.trigger.schedule),
            saved.get(j.id) or schedule_audience(j.trigger.schedule),
            next_tick(trig, start - HOUR),
        )
        for j in journeys
        if j.trigger.schedule is not None
    ]


async def sweep(
    factory: SessionFactory, router: JourneyRouter, sweep: Sweep, tick: datetime
) -> Sweep:
    """Enter the audience's members at every cron time up to ``tick``, a page at a time,
    as the scheduler's sweep would; the sweep with its next fire time."""
    fire, journey = sweep.next_fire, sweep.journey
    while fire is not None and fire <= tick:
        signal = EventSignal(
            message_id=sweep_workflow_id(journey.id, fire),
            event="audience_sweep",
            timestamp=fire,
        )
        after: str | None = None
        while True:
            with factory() as session:
                page = sweep.audience.members(session, now=fire, after=after)
            if not page:
                break
            await router.enter_many(journey.id, page, trigger=signal)
            after = page[-1]
        fire = next_tick(sweep.trigger, fire)
    return Sweep(journey, sweep.trigger, sweep.audience, fire)


def plans_of_day(
    seed: int, people: list[Person], day: int, start: datetime
) -> dict[datetime, list[DayPlan]]:
    """The day's plans of the people signed up by ``start``, by the hour each acts."""
    plans: dict[datetime, list[DayPlan]] = {}
    for person in people:
        if person.signed_up_by(start):
            plan = plan_day(seed, person, day, start)
            plans.setdefault(plan.at, []).append(plan)
    return plans


def signups(people: list[Person], tick: datetime) -> list[dict[str, Any]]:
    """The calls of the people who sign up at ``tick``."""
    calls = []
    for p in people:
        if p.signup_at == tick:
            calls.append(identify(p, tick))
            calls.append(track(p, "user_signed_up", tick, 0, channel="app", method="phone"))
    return calls


def calls_of(
    factory: SessionFactory,
    behaviour: Behaviour,
    plans: list[DayPlan],
    tick: datetime,
    entering: bool,
) -> list[dict[str, Any]]:
    """The calls of the users whose plans fall at ``tick``."""
    if not plans:
        return []
    ids = [p.person.user_id for p in plans]
    lifted, coupons = _lift_and_coupons(factory, behaviour, ids, tick)
    calls = []
    for plan in plans:
        uid = plan.person.user_id
        calls += act(
            plan,
            behaviour,
            lifted=uid in lifted,
            journey_coupons=coupons.get(uid, []),
            entering=entering,
        )
    return calls


def _lift_and_coupons(
    factory: SessionFactory, behaviour: Behaviour, user_ids: list[str], tick: datetime
) -> tuple[set[str], dict[str, list[HeldCoupon]]]:
    """Who a message reached within the lift window before ``tick``; and the unused,
    unexpired coupons journeys gave each user."""
    window = timedelta(days=behaviour.lift.days)
    with factory() as session:
        lifted = set(
            session.scalars(
                select(Message.user_id).where(
                    Message.user_id.in_(user_ids),
                    Message.status.in_(SENT),
                    Message.sent_at >= tick - window,
                    Message.sent_at < tick,
                )
            )
        )
        coupons: dict[str, list[HeldCoupon]] = {}
        for row in session.scalars(
            select(Coupon)
            .where(
                Coupon.user_id.in_(user_ids),
                Coupon.redeemed_at.is_(None),
                Coupon.expires_at > tick,
            )
            .order_by(Coupon.expires_at, Coupon.id)
        ):
            coupons.setdefault(row.user_id, []).append(
                (row.code, row.amount_fen, row.min_spend_fen, row.expires_at)
            )
    return {u for u in lifted if u}, coupons


def open_workflow_ids(factory: SessionFactory, user_ids: list[str]) -> list[str]:
    """The workflow ids of these users' open runs."""
    if not user_ids:
        return []
    ids: list[str] = []
    with factory() as session:
        for start in range(0, len(user_ids), 500):  # under SQLite's parameter limit
            ids += session.scalars(
                select(Enrollment.workflow_id).where(
                    Enrollment.user_id.in_(user_ids[start : start + 500]),
                    Enrollment.exited_at.is_(None),
                )
            )
    return ids


def open_runs(factory: SessionFactory) -> int:
    """How many runs are open."""
    with factory() as session:
        stmt = select(func.count()).select_from(Enrollment).where(Enrollment.exited_at.is_(None))
        return session.scalar(stmt) or 0
