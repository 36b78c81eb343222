"""Money per journey: what the treatment earned and cost against its holdout, per entrant.

Each entrant (enrollment) is followed for the journey's attribution window: its goal's
``within`` from entry (7 days for a journey without a goal), the window the conversion
counts use. Within it:

- **orders** are the user's ``order_placed`` events (not the one that started the run); an
  order inside the windows of several of the user's entries counts for the latest of them,
  so a journey never counts one order twice;
- **GMV** is each order's value before its discounts: the amount paid (``total_fen``, or
  ``total`` in yuan) plus ``discount_fen`` when the platform sends it, else the discount of
  the coupon it used when the engine issued that coupon (the ``coupons`` table knows it);
- **coupon cost** is the discount of every coupon this journey issued to the entrant that
  was redeemed (any time: a cost is a cost);
- **message cost** is every message of the run a provider accepted, priced per channel from
  settings: an SMS per segment, at its destination country's price when one is set. The
  segments are those the ledger row was billed as (the sender records the rendered body's
  count); a row written before the ledger kept them is counted from the body the outbox
  recorded, else as 1 segment.

The comparison of treatment with holdout, its intervals and ROI are :mod:`store.uplift`'s.
The journey's spend is the treatment's coupon cost plus its message cost. The holdout is
given no coupon (the interpreter withholds a control run's coupons, as it does the global
control group's), so it converts as it would have without the journey. A held-out run that
issued its coupon before coupons were withheld keeps it (its history replays as recorded):
such coupons were never announced, are not the journey's spend, and can lift that
holdout's conversion, so the lift of entries from before then is understated.

Entrants of the global control group (set aside at entry: their group is
``global_control``) were sent nothing in either arm: both arms and the sample-ratio check
leave them out, and the report counts them (``set_aside``). Their orders still count for
their own entry, not an earlier one of the same user.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVarTuple

from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.orm import Session

from journeys.durations import format_duration
from kinds import kind
from message_templates.sms import sms_segments
from store import stats
from store.journeys import spec_of
from store.ledger import COUNTED_STATUSES, SendStatus
from store.models import Coupon, Enrollment, Event, JourneyVersion, Message, OutboxMessage, User
from store.models.journeys import ARMS, SET_ASIDE
from store.uplift import Entrant, Money, compare

if TYPE_CHECKING:
    from config import Settings

DEFAULT_WINDOW = timedelta(days=7)
# Messages a provider accepted, and so billed (an undelivered SMS and a bounced email too).
BILLED = (*COUNTED_STATUSES, SendStatus.UNDELIVERED, SendStatus.BOUNCED)
GROUPS = ARMS
_Columns = TypeVarTuple("_Columns")


@dataclass(frozen=True)
class Costs:
    """What messages cost and what an order earns (settings: see the README)."""

    sms_segment_fen: float = 5.0
    email_fen: float = 1.0
    push_fen: float = 0.0
    margin_rate: float = 0.25
    # E.164 prefix ("+1", "+852") -> fen per SMS segment there; the longest prefix wins.
    sms_segment_fen_by_country: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings) -> Costs:
        """The costs ``settings`` set (LIFECYCLE_SMS_COST_FEN_PER_SEGMENT, ...)."""
        return cls(
            sms_segment_fen=settings.sms_cost_fen_per_segment,
            email_fen=settings.email_cost_fen,
            push_fen=settings.push_cost_fen,
            margin_rate=settings.margin_rate,
            sms_segment_fen_by_country=dict(settings.sms_cost_fen_by_country),
        )

    def sms(self, phone: str | None, segments: int) -> float:
        price = self.sms_segment_fen
        best = 0
        for prefix, fen in self.sms_segment_fen_by_country.items():
            if phone and phone.startswith(prefix) and len(prefix) > best:
                price, best = fen, len(prefix)
        return price * segments

    def message(
        self, channel: str, *, phone: str | None, segments: int | None, body: str | None
    ) -> float:
        """What one accepted message (a ledger row) costs: per segment for a kind sent as
        SMS segments (:func:`billed_segments`), else the kind's price per message (nothing
        for a kind without one)."""
        if kind(channel).template.segmented:
            return self.sms(phone, billed_segments(segments, body))
        return {"email": self.email_fen, "push": self.push_fen}.get(channel, 0.0)


def billed_segments(segments: int | None, body: str | None) -> int:
    """The SMS segments a ledger row is billed as: those its send recorded, else counted
    from the body the outbox kept, else 1 (a row from before the ledger kept the count)."""
    if segments is not None:
        return segments
    return sms_segments(body) if body else 1


def with_outbox_body(stmt: Select[*_Columns]) -> Select[*_Columns, str | None]:
    """``stmt`` over the ledger, with the body the outbox kept of each send (or None)."""
    return stmt.add_columns(OutboxMessage.body).outerjoin(
        OutboxMessage, OutboxMessage.message_key == Message.idempotency_key
    )


@dataclass(frozen=True)
class MoneyReport:
    """A journey's money: the whole journey, then per send step (and A/B variant)."""

    journey_id: str
    window: str
    costs: Costs
    journey: Money
    steps: list[Money]
    sample_ratio: stats.SampleRatio | None  # the split of users against the configured one
    set_aside: int = 0  # entrants of the global control group, in neither arm

    def as_dict(self) -> dict[str, Any]:
        ratio = self.sample_ratio
        return {
            "journey_id": self.journey_id,
            "set_aside": self.set_aside,
            "window": self.window,
            "costs": asdict(self.costs),
            "journey": self.journey.as_dict(),
            "steps": [s.as_dict() for s in self.steps],
            "sample_ratio": None
            if ratio is None
            else asdict(ratio)
            | {"realized_share": ratio.realized_share, "mismatch": ratio.mismatch},
        }


def money_report(
    session: Session,
    *,
    journey_id: str,
    costs: Costs,
    since: datetime | None = None,
    steps: bool = True,
) -> MoneyReport:
    """Money per entrant, treatment against holdout, for ``journey_id`` (entries since);
    per send step and variant too unless ``steps`` is False (a list of journeys)."""
    versions = {
        v.version: spec_of(v)
        for v in session.scalars(
            select(JourneyVersion).where(JourneyVersion.journey_id == journey_id)
        )
    }
    ours: ColumnElement[bool] = Enrollment.journey_id == journey_id
    if since is not None:
        ours = ours & (Enrollment.entered_at >= since)
    rows = session.execute(
        select(
            Enrollment.id,
            Enrollment.user_id,
            Enrollment.group,
            Enrollment.entered_at,
            Enrollment.journey_version,
            Enrollment.converted_at,
            Enrollment.trigger_message_id,
        )
        .where(ours)
        .order_by(Enrollment.user_id, Enrollment.entered_at, Enrollment.id)
    ).all()
    entrants = {r.id: Entrant(r.group, r.user_id, r.converted_at is not None) for r in rows}
    by_user: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by_user[r.user_id].append(r)

    def window(version: int) -> timedelta:
        spec = versions.get(version)
        return spec.goal.within if spec is not None and spec.goal is not None else DEFAULT_WINDOW

    def latest_entry(user_id: str, at: datetime) -> Any | None:
        entries = by_user.get(user_id, [])
        i = bisect_right([e.entered_at for e in entries], at)
        return entries[i - 1] if i else None

    users = select(Enrollment.user_id).where(ours).distinct()
    start = min((r.entered_at for r in rows), default=None)
    if start is not None:
        orders = session.execute(
            select(Event.message_id, Event.user_id, Event.timestamp, Event.properties).where(
                Event.type == "track",
                Event.event == "order_placed",
                Event.user_id.in_(users),
                Event.timestamp >= start,
            )
        ).all()
        coupons = coupon_amounts(session, (o.properties for o in orders))
        for o in orders:
            entry = latest_entry(o.user_id, o.timestamp)
            if (
                entry is None
                or o.message_id == entry.trigger_message_id
                or o.timestamp >= entry.entered_at + window(entry.journey_version)
            ):
                continue
            entrant = entrants[entry.id]
            entrant.orders += 1
            entrant.gmv_fen += order_value_fen(o.properties, coupons)
    for user_id, issued_at, amount in session.execute(
        select(Coupon.user_id, Coupon.issued_at, Coupon.amount_fen).where(
            Coupon.journey_id == journey_id,
            Coupon.redeemed_at.is_not(None),
            Coupon.user_id.in_(users),
        )
    ):
        entry = latest_entry(user_id, issued_at)
        if entry is not None:
            entrants[entry.id].coupon_fen += amount
    reached: dict[tuple[str, str | None], set[int]] = defaultdict(set)
    step_cost: dict[tuple[str, str | None], float] = defaultdict(float)
    for enrollment_id, step, variant, channel, status, segments, phone, body in session.execute(
        with_outbox_body(
            select(
                Message.enrollment_id,
                Message.step_id,
                Message.variant,
                Message.channel,
                Message.status,
                Message.segments,
                User.phone,
            )
        )
        .outerjoin(User, User.id == Message.user_id)
        .where(
            Message.journey_id == journey_id,
            true()
            if since is None
            else Message.enrollment_id.in_(select(Enrollment.id).where(ours)),
        )
    ):
        if enrollment_id is None or enrollment_id not in entrants:
            continue
        entrant = entrants[enrollment_id]
        key = ((step or "").split(".")[0], variant)
        reached[key].add(enrollment_id)
        if status in BILLED:
            fen = costs.message(channel, phone=phone, segments=segments, body=body)
            entrant.message_fen += fen
            if entrant.group == "treatment":
                step_cost[key] += fen
    by_step = []
    for key in sorted(reached, key=lambda k: (k[0], k[1] or "")) if steps else []:
        step, variant = key
        label = f"{step} · {variant}" if variant else step
        subset = [entrants[i] for i in sorted(reached[key])]
        by_step.append(
            compare(label, subset, margin_rate=costs.margin_rate, spend_fen=step_cost[key])
        )
    return MoneyReport(
        journey_id=journey_id,
        window=format_duration(window(max(versions)) if versions else DEFAULT_WINDOW),
        costs=costs,
        journey=compare(journey_id, list(entrants.values()), margin_rate=costs.margin_rate),
        steps=by_step,
        sample_ratio=_sample_ratio(rows, versions),
        set_aside=sum(r.group == SET_ASIDE for r in rows),
    )


def _sample_ratio(rows: Iterable[Any], versions: dict[int, Any]) -> stats.SampleRatio | None:
    """Users per group against each version's holdout share (the split is by user); the
    global control's entrants, in neither arm, are left out."""
    seen: set[tuple[int, str, str]] = {
        (r.journey_version, r.user_id, r.group) for r in rows if r.group in ARMS
    }
    holdout, shares = 0, []
    for version, _user, group in seen:
        spec = versions.get(version)
        share = (spec.holdout if spec is not None else 0) / 100
        if 0 < share < 1:
            holdout += group == "holdout"
            shares.append(share)
    total = len(shares)
    if not total:
        return None
    return stats.sample_ratio_mismatch(
        holdout=holdout, total=total, expected_share=math.fsum(shares) / total
    )


def _code(properties: dict[str, Any]) -> str | None:
    code = properties.get("coupon_code")
    return code if isinstance(code, str) and code else None


def _fen(properties: dict[str, Any], *keys: tuple[str, int]) -> int | None:
    for key, scale in keys:
        value = properties.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return round(value * scale)
    return None


def order_value_fen(properties: dict[str, Any], coupons: dict[str, int]) -> int:
    """An order's value before its discounts: the amount paid (``total_fen``, or ``total``
    in yuan) plus ``discount_fen`` when the platform sends it (every discount on the order,
    promotions and coupons alike), else the discount of the engine-issued coupon it names
    (``coupons``: code → amount, :func:`coupon_amounts`)."""
    paid = _fen(properties, ("total_fen", 1), ("total", 100)) or 0
    discount = _fen(properties, ("discount_fen", 1))
    return paid + (discount if discount is not None else engine_discount_fen(properties, coupons))


def engine_discount_fen(properties: dict[str, Any], coupons: dict[str, int]) -> int:
    """The discount of the engine-issued coupon the order names (0 for none)."""
    code = _code(properties)
    return coupons.get(code, 0) if code else 0


def coupon_amounts(session: Session, orders: Iterable[dict[str, Any]]) -> dict[str, int]:
    """The engine-issued coupons the orders (their properties) name: code → amount in fen."""
    found: dict[str, int] = {}
    wanted = sorted({code for o in orders if (code := _code(o))})
    for i in range(0, len(wanted), 500):
        stmt = select(Coupon.code, Coupon.amount_fen).where(Coupon.code.in_(wanted[i : i + 500]))
        found.update({code: amount for code, amount in session.execute(stmt)})
    return found
