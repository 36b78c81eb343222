"""Read models: one user's timeline, a journey's totals, and who gets a conversion's credit.

Attribution is first touch: a goal event (an order) can end several of a user's journeys at
once, since every open enrollment whose goal it is converts and stops sending. The credit
goes to one of them: among the treatment enrollments that one goal event converted, the one
whose first message (sent before the event) reached the user earliest; an enrollment that
sent nothing before the event loses to any that did, and between those the first entered
wins. Holdout enrollments always keep their conversion: they are the control, and sent
nothing to be credited for.

The lift compares treatment with holdout on the goal itself (every conversion, credited
here or not), so a journey that shares its users with others is not made to look worse
than its control; the credited count is the journey's share of the orders, which adds up
across journeys without counting an order twice. Entrants of the global control group were
sent nothing in either arm: they are set aside from both (``set_aside``) and credited
nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, Select, and_, case, func, select, true
from sqlalchemy.orm import Session

from store.ledger import COUNTED_STATUSES, SendStatus
from store.lift import Lift, lift
from store.models import Coupon, Enrollment, Event, Message, User
from store.models.journeys import SET_ASIDE
from store.money import Costs, MoneyReport, money_report


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # event | enrolled | coupon | message | exit
    text: str
    properties: dict[str, Any] | None = None  # an event's properties


# Why a send is held, in words, by the ledger's reason (activities/delivery.py).
DEFERRAL_REASONS = {
    "quiet_hours": "quiet hours",
    "frequency_cap": "frequency cap reached",
    "journey_paused": "the journey is paused",
    "paused_all": "all sends are paused",
}


def user_timeline(
    session: Session, *, user_id: str, default_timezone: str | None = None
) -> list[TimelineEntry]:
    """Everything that happened to a user, oldest first: events (with their properties),
    entries, coupons, sends and skips (with reasons), exits. A send held for later says why
    and when it will be tried again, in the user's time zone (``default_timezone`` when the
    profile has none) and in UTC."""
    entries: list[TimelineEntry] = []
    for ev in session.scalars(select(Event).where(Event.user_id == user_id, Event.type == "track")):
        text = _ejection(ev.properties) if ev.event == EJECTED else f"{ev.event}"
        entries.append(TimelineEntry(ev.timestamp, "event", text, ev.properties or None))
    user = session.get(User, user_id)
    zone = _zone((user.timezone if user else None) or default_timezone)
    attributed = _credit(Enrollment.user_id == user_id).subquery()
    credit = {
        enrollment_id: credited_to
        for enrollment_id, credited_to in session.execute(
            select(attributed.c.id, attributed.c.credited_to)
        )
    }
    for en in session.scalars(select(Enrollment).where(Enrollment.user_id == user_id)):
        entries.append(
            TimelineEntry(
                en.entered_at,
                "enrolled",
                f"entered {en.journey_id} v{en.journey_version} ({en.group})",
            )
        )
        if en.exited_at is not None:
            what = f"exited {en.journey_id}: {en.exit_reason}"
            credited_to = credit.get(en.id)
            if credited_to is not None and credited_to != en.journey_id:
                what += f" (credited to {credited_to}: it reached the user first)"
            entries.append(TimelineEntry(en.exited_at, "exit", what))
    for c in session.scalars(select(Coupon).where(Coupon.user_id == user_id)):
        text = (
            f"coupon {c.code} issued: ¥{c.amount_fen / 100:g} off ¥{c.min_spend_fen / 100:g}+, "
            f"expires {c.expires_at:%Y-%m-%d %H:%M} UTC"
        )
        entries.append(TimelineEntry(c.issued_at, "coupon", text))
    for m in session.scalars(select(Message).where(Message.user_id == user_id)):
        text = f"{m.channel} {m.step_id} ({m.template}): {m.status}"
        if m.status == "pending" and m.deferred_until is not None:
            why = DEFERRAL_REASONS.get(m.reason or "", m.reason or "held")
            text = f"{m.channel} {m.step_id} ({m.template}): deferred — {why}; "
            text += f"will be tried again {_local_and_utc(m.deferred_until, zone)}"
        elif m.reason and m.status not in SENT:  # a send held earlier keeps its reason
            text += f" — {m.reason}"
        entries.append(TimelineEntry(m.sent_at or m.created_at, "message", text))
    order = {"event": 0, "enrolled": 1, "coupon": 2, "message": 3, "exit": 4}
    entries.sort(key=lambda e: (e.at, order[e.kind]))
    return entries


# The fact `lifecycle runs eject` (or the console) records when a person ends a run.
EJECTED = "journey_ejected"


def _ejection(p: dict[str, Any] | None) -> str:
    """``ejected from cart_abandonment at wait_1h by alice: asked to stop``."""
    p = p or {}
    return (
        f"ejected from {p.get('journey_id')} at {p.get('step') or '-'} "
        f"by {p.get('actor') or '-'}: {p.get('reason') or '-'}"
    )


def _zone(name: str | None) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _local_and_utc(at: datetime, zone: ZoneInfo | None) -> str:
    """``2026-12-06 08:00 Asia/Shanghai (2026-12-06 00:00 UTC)``, or UTC alone."""
    utc = f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    if zone is None or zone.key == "UTC":
        return utc
    return f"{at.astimezone(zone):%Y-%m-%d %H:%M} {zone.key} ({utc})"


@dataclass
class StepOutcome:
    """One step on one channel: how many went out, arrived, failed, and were skipped why."""

    step: str
    channel: str
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class JourneyReport:
    """What a journey achieved: the numbers behind `lifecycle report`."""

    journey_id: str
    since: datetime | None
    entered: dict[str, int]  # by arm (treatment, holdout)
    converted: dict[str, int]  # by arm: reached the goal in the window (the lift's numbers)
    exits: dict[str, int]
    steps: list[StepOutcome]
    lift: Lift
    coupons_issued: int
    coupons_redeemed: int
    # Treatment conversions credited to this journey by first touch, and those credited to
    # another journey that reached the user earlier (see the module docstring).
    credited: int = 0
    credited_elsewhere: int = 0
    # Orders, GMV, costs and ROI against the holdout (:mod:`store.money`), when priced.
    money: MoneyReport | None = None
    # Entrants of the global control group, in neither arm (they were sent nothing).
    set_aside: int = 0

    def rate(self, group: str) -> float:
        """Conversion rate of ``group`` (treatment or holdout); 0 when nobody entered."""
        return (
            self.converted.get(group, 0) / self.entered[group] if self.entered.get(group) else 0.0
        )

    @property
    def set_aside_line(self) -> str:
        """``global control: N set aside ...`` when any were; "" otherwise."""
        return set_aside_line(self.set_aside)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        data["money"] = self.money.as_dict() if self.money else None
        return data


def set_aside_line(count: int) -> str:
    """What the reports say of ``count`` entrants of the global control group; "" for 0."""
    if not count:
        return ""
    return f"global control: {count} set aside (sent no marketing; in neither arm's numbers)"


# Handed to the provider (the ledger's counted statuses), reported delivered, failed.
SENT = COUNTED_STATUSES
DELIVERED = (SendStatus.DELIVERED, SendStatus.OPENED, SendStatus.CLICKED)
FAILED = (SendStatus.FAILED, SendStatus.BOUNCED, SendStatus.UNDELIVERED)


def journey_report(
    session: Session,
    *,
    journey_id: str,
    since: datetime | None = None,
    costs: Costs | None = None,
    money_steps: bool = True,
) -> JourneyReport:
    """Entered, treatment vs holdout, per step and channel outcomes, conversions and lift;
    with ``costs``, also the journey's money (orders, GMV, costs, ROI), per send step
    unless ``money_steps`` is False."""
    enrolled = select(Enrollment).where(Enrollment.journey_id == journey_id)
    if since is not None:
        enrolled = enrolled.where(Enrollment.entered_at >= since)
    sub = enrolled.subquery()
    entered: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    exits: Counter[str] = Counter()
    set_aside = 0
    for group, reason, count, conv in session.execute(
        select(
            sub.c.group, sub.c.exit_reason, func.count(), func.count(sub.c.converted_at)
        ).group_by(sub.c.group, sub.c.exit_reason)
    ):
        if group == SET_ASIDE:
            set_aside += count
        else:
            entered[group] += count
            converted[group] += conv
        exits[reason or "running"] += count
    steps: dict[tuple[str, str], StepOutcome] = {}
    for step, channel, status, reason, count in session.execute(
        select(Message.step_id, Message.channel, Message.status, Message.reason, func.count())
        .where(
            Message.journey_id == journey_id,
            true() if since is None else Message.enrollment_id.in_(select(sub.c.id)),
        )
        .group_by(Message.step_id, Message.channel, Message.status, Message.reason)
    ):
        row = steps.setdefault((step or "", channel), StepOutcome(step or "", channel))
        row.sent += count if status in SENT else 0
        row.delivered += count if status in DELIVERED else 0
        row.failed += count if status in FAILED else 0
        if status == "skipped":
            row.skipped[reason or "unknown"] = row.skipped.get(reason or "unknown", 0) + count
    coupons = select(Coupon).where(Coupon.journey_id == journey_id)
    if since is not None:
        coupons = coupons.where(Coupon.issued_at >= since)
    csub = coupons.subquery()
    issued, redeemed = session.execute(select(func.count(), func.count(csub.c.redeemed_at))).one()
    ours = and_(
        Enrollment.journey_id == journey_id,
        true() if since is None else Enrollment.entered_at >= since,
    )
    credit = _credit(ours).subquery()
    credited, converted_treatment = session.execute(
        select(
            func.count(case((credit.c.credited_to == journey_id, 1))),
            func.count(),
        ).where(credit.c.journey_id == journey_id)
    ).one()
    return JourneyReport(
        journey_id=journey_id,
        since=since,
        entered=dict(entered),
        converted=dict(converted),
        exits=dict(exits),
        steps=[steps[k] for k in sorted(steps)],
        lift=lift(
            converted["treatment"], entered["treatment"], converted["holdout"], entered["holdout"]
        ),
        coupons_issued=issued,
        coupons_redeemed=redeemed,
        credited=credited,
        credited_elsewhere=converted_treatment - credited,
        money=None
        if costs is None
        else money_report(
            session, journey_id=journey_id, costs=costs, since=since, steps=money_steps
        ),
        set_aside=set_aside,
    )


def _credit(concerning: ColumnElement[bool]) -> Select[tuple[int, str, str]]:
    """Converted treatment enrollments with the journey credited for their goal event.

    Rows (enrollment id, its journey, the journey credited) for every converted treatment
    enrollment that shares a goal event with one ``concerning`` selects. One goal event is
    one user's conversions at one instant: the run records the event's own timestamp.
    """
    converted = and_(Enrollment.group == "treatment", Enrollment.converted_at.is_not(None))
    events = select(Enrollment.user_id, Enrollment.converted_at).where(converted, concerning)
    shared = events.distinct().subquery()
    same_event = and_(
        Enrollment.user_id == shared.c.user_id, Enrollment.converted_at == shared.c.converted_at
    )
    first_touch = (
        select(
            Message.enrollment_id.label("enrollment_id"),
            func.min(Message.sent_at).label("touched_at"),
        )
        .join(Enrollment, Enrollment.id == Message.enrollment_id)
        .join(shared, same_event)
        .where(Message.status.in_(SENT), Message.sent_at <= Enrollment.converted_at)
        .group_by(Message.enrollment_id)
        .subquery()
    )
    return (
        select(
            Enrollment.id,
            Enrollment.journey_id,
            func.first_value(Enrollment.journey_id)
            .over(
                partition_by=(Enrollment.user_id, Enrollment.converted_at),
                order_by=(
                    case((first_touch.c.touched_at.is_(None), 1), else_=0),
                    first_touch.c.touched_at,
                    Enrollment.entered_at,
                    Enrollment.id,
                ),
            )
            .label("credited_to"),
        )
        .join(shared, same_event)
        .outerjoin(first_touch, first_touch.c.enrollment_id == Enrollment.id)
        .where(converted)
    )
