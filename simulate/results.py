"""What a simulation shows: per journey a funnel (entered, each send step sent or skipped by
reason, converted; treatment against holdout), the sends by the user's local hour, and one
user's story. Read from the simulation's database once every run has ended."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activities.policy import QuietHours, valid_zone
from audiences.addresses import address_of
from config import Settings
from journeys.durations import format_duration
from journeys.models import Journey, SendStep, walk
from kinds import all_kinds
from store.db import SessionFactory
from store.lift import Lift, lift
from store.models import Coupon, Enrollment, Message, User
from store.models.journeys import ARMS
from store.reports import SENT, user_timeline

GROUPS = ARMS
FAILED = ("failed", "bounced", "undelivered")
_COUPON_CODE = re.compile(r"^coupon \S+ issued")


@dataclass
class StepCounts:
    """One send step for one group: ledger rows (``reached``) and what became of them."""

    reached: int = 0
    sent: int = 0
    failed: int = 0
    pending: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class StepFunnel:
    step: str
    channel: str
    treatment: StepCounts = field(default_factory=StepCounts)
    holdout: StepCounts = field(default_factory=StepCounts)


@dataclass
class JourneyFunnel:
    journey_id: str
    name: str
    trigger_event: str | None  # the event that enters users (None: a schedule's sweeps)
    goal: str | None
    entered: dict[str, int]
    converted: dict[str, int]
    rate: dict[str, float]
    lift: Lift
    steps: list[StepFunnel]
    exits: dict[str, int]
    coupons_issued: int
    coupons_redeemed: int
    # Entrants of the global control group: sent no marketing, in neither group's numbers.
    set_aside: int = 0


@dataclass
class SendHours:
    """Sends by the user's local hour (0-23), and marketing sends that fell inside the quiet
    hours that applied to them (there should be none)."""

    quiet_hours: str | None
    by_hour: list[int]
    marketing_in_quiet_hours: int


@dataclass
class TimelineLine:
    day: int  # days since the simulation started
    local_time: str  # HH:MM in the user's timezone
    kind: str
    text: str


@dataclass
class Sample:
    user_id: str
    journey_id: str
    group: str
    timezone: str
    locale: str | None
    member_tier: str | None
    reachable: list[str]
    timeline: list[TimelineLine]


@dataclass
class SimulationResult:
    users: int
    days: int
    seed: int
    start: datetime
    events: dict[str, int]
    journeys: list[JourneyFunnel]
    send_hours: SendHours
    sample: Sample | None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["start"] = self.start.isoformat()
        return data


def collect(
    factory: SessionFactory,
    journeys: list[Journey],
    *,
    settings: Settings,
    users: int,
    days: int,
    seed: int,
    start: datetime,
    events: dict[str, int],
    seconds: float = 0.0,
) -> SimulationResult:
    with factory() as session:
        funnels = [_funnel(session, journey) for journey in journeys]
        hours = _send_hours(session, journeys, settings)
        sample = _sample(session, journeys[0], settings, start) if journeys else None
    return SimulationResult(
        users=users,
        days=days,
        seed=seed,
        start=start,
        events=events,
        journeys=funnels,
        send_hours=hours,
        sample=sample,
        seconds=round(seconds, 1),
    )


def _funnel(session: Session, journey: Journey) -> JourneyFunnel:
    entered: Counter[str] = Counter({g: 0 for g in GROUPS})
    converted: Counter[str] = Counter({g: 0 for g in GROUPS})
    exits: Counter[str] = Counter()
    set_aside = 0
    for group, reason, count, conv in session.execute(
        select(
            Enrollment.group,
            Enrollment.exit_reason,
            func.count(),
            func.count(Enrollment.converted_at),
        )
        .where(Enrollment.journey_id == journey.id)
        .group_by(Enrollment.group, Enrollment.exit_reason)
    ):
        exits[reason or "running"] += count
        if group not in GROUPS:  # the global control's (store.models.journeys.SET_ASIDE)
            set_aside += count
            continue
        entered[group] += count
        converted[group] += conv
    order = {s.id: i for i, s in enumerate(walk(journey.steps)) if isinstance(s, SendStep)}
    steps: dict[tuple[str, str], StepFunnel] = {}
    for step, channel, group, status, reason, count in session.execute(
        select(
            Message.step_id,
            Message.channel,
            Enrollment.group,
            Message.status,
            Message.reason,
            func.count(),
        )
        .join(Enrollment, Enrollment.id == Message.enrollment_id)
        .where(Message.journey_id == journey.id, Enrollment.group.in_(GROUPS))
        .group_by(
            Message.step_id, Message.channel, Enrollment.group, Message.status, Message.reason
        )
    ):
        row = steps.setdefault((step or "", channel), StepFunnel(step or "", channel))
        counts: StepCounts = getattr(row, group)
        counts.reached += count
        if status in SENT:
            counts.sent += count
        elif status in FAILED:
            counts.failed += count
        elif status == "skipped":
            counts.skipped[reason or "unknown"] = counts.skipped.get(reason or "unknown", 0) + count
        else:
            counts.pending += count
    coupons = select(Coupon).where(Coupon.journey_id == journey.id).subquery()
    issued, redeemed = session.execute(
        select(func.count(), func.count(coupons.c.redeemed_at))
    ).one()
    goal = None
    if journey.goal is not None:
        goal = f"{' or '.join(journey.goal.events())} within {format_duration(journey.goal.within)}"
    return JourneyFunnel(
        journey_id=journey.id,
        name=journey.name,
        trigger_event=journey.trigger.event,
        goal=goal,
        entered=dict(entered),
        converted=dict(converted),
        rate={g: converted[g] / entered[g] if entered[g] else 0.0 for g in GROUPS},
        lift=lift(
            converted["treatment"], entered["treatment"], converted["holdout"], entered["holdout"]
        ),
        steps=sorted(steps.values(), key=lambda s: (order.get(s.step, len(order)), s.channel)),
        exits=dict(sorted(exits.items())),
        coupons_issued=issued,
        coupons_redeemed=redeemed,
        set_aside=set_aside,
    )


def _quiet_window(journey: Journey | None, settings: Settings) -> QuietHours | None:
    own = journey.delivery.quiet_hours if journey is not None else None
    if own is not None:
        return None if own == "off" else QuietHours.parse(own)
    return QuietHours.parse(settings.quiet_hours) if settings.quiet_hours else None


def _send_hours(session: Session, journeys: list[Journey], settings: Settings) -> SendHours:
    by_id = {j.id: j for j in journeys}
    by_hour = [0] * 24
    inside = 0
    rows = session.execute(
        select(Message.sent_at, Message.topic, Message.journey_id, User.timezone)
        .join(User, User.id == Message.user_id)
        .where(Message.status.in_(SENT), Message.sent_at.is_not(None))
    )
    for sent_at, topic, journey_id, zone in rows:
        assert sent_at is not None
        local = sent_at.astimezone(ZoneInfo(valid_zone(zone, settings.default_timezone)))
        by_hour[local.hour] += 1
        quiet = _quiet_window(by_id.get(journey_id or ""), settings)
        if topic == "marketing" and quiet is not None and quiet.contains(local.time()):
            inside += 1
    return SendHours(
        quiet_hours=settings.quiet_hours, by_hour=by_hour, marketing_in_quiet_hours=inside
    )


def _sample(
    session: Session, journey: Journey, settings: Settings, start: datetime
) -> Sample | None:
    """The run of ``journey`` with the fullest story, from its entry to its exit: a
    treatment run with the most messages sent, then a converted one; ties go to the smallest
    user id (so a seed picks the same one)."""
    sent = func.count(Message.id)
    stmt = (
        select(Enrollment.user_id, Enrollment.group, Enrollment.entered_at, Enrollment.exited_at)
        .outerjoin(
            Message,
            (Message.enrollment_id == Enrollment.id) & Message.status.in_(SENT),
        )
        .where(Enrollment.journey_id == journey.id)
        .group_by(Enrollment.id)
        .order_by(
            (Enrollment.group == "treatment").desc(),
            sent.desc(),
            Enrollment.converted_at.is_(None),
            Enrollment.user_id,
            Enrollment.entered_at,
        )
        .limit(1)
    )
    found = session.execute(stmt).first()
    if found is None:
        return None
    user_id, group, entered_at, exited_at = found
    user = session.get(User, user_id)
    assert user is not None
    zone = ZoneInfo(valid_zone(user.timezone, settings.default_timezone))
    reachable = [k.name for k in all_kinds() if address_of(session, user, k) is not None]
    lines = []
    for entry in user_timeline(session, user_id=user_id):
        if entry.at < entered_at or (exited_at is not None and entry.at > exited_at):
            continue
        day = (entry.at - start) // timedelta(days=1)
        local = entry.at.astimezone(zone)
        text = _COUPON_CODE.sub("coupon issued", entry.text)  # codes differ run to run
        lines.append(TimelineLine(day, f"{local:%H:%M}", entry.kind, text))
    return Sample(
        user_id=user_id,
        journey_id=journey.id,
        group=group,
        timezone=str(zone),
        locale=user.locale,
        member_tier=user.member_tier,
        reachable=reachable,
        timeline=lines,
    )
