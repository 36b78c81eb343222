"""Who a planned broadcast would reach, before it is scheduled: the audience's members at the
send time, each asked through the journeys' delivery policy as the broadcast's pages ask it
(the holdout first, then :func:`activities.policy.decide` over what
:class:`activities.policy_reads.ChunkReads` reads for a chunk), and nothing written: no ledger
row, no send. A large audience is asked on a random sample and the counts are scaled to it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select

from activities.orders import BroadcastRecipient, SendOrder
from activities.policy import DeliveryRules, decide
from activities.policy_reads import ChunkReads
from enrollment.entries import holdout_group
from store.broadcasts import HELD_OUT
from store.db import SessionFactory
from store.models import Message, User
from triggers.broadcasts import BroadcastError, BroadcastPlan

# Members asked one by one at most; a larger audience is asked on a random sample this size
# (a couple of seconds on either database).
SAMPLE = 2000
# Members per read of the policy's data, as a broadcast's page decides them.
CHUNK = 100
# The holdout of a broadcast is drawn with its workflow id, unknown until it is stored: the
# preview draws the same share with a salt of its own.
PREVIEW_SALT = "broadcast:preview"
# The reasons a preview can give, in the order the policy asks them.
SKIP_REASONS = (HELD_OUT, "global_control", "unsubscribed", "unreachable", "frequency_cap")


@dataclass(frozen=True)
class BroadcastPreview:
    """What the policy would decide for a broadcast's members at ``at``.

    ``skipped`` and ``deferred`` count by reason among the ``asked`` members (all of them, or
    a random sample when ``asked < members``); the ``estimate_*`` answers scale them to the
    whole audience.
    """

    at: datetime
    members: int
    asked: int
    ready: int
    skipped: dict[str, int] = field(default_factory=dict)
    deferred: dict[str, int] = field(default_factory=dict)
    rate_per_second: float | None = None  # the slower of the broadcast's and the channel's

    @property
    def sampled(self) -> bool:
        return self.asked < self.members

    def estimate(self, count: int) -> int:
        """``count`` among the asked members, as a count of the whole audience."""
        if not self.asked:
            return 0
        return round(count * self.members / self.asked)

    @property
    def estimate_ready(self) -> int:
        return self.estimate(self.ready)

    @property
    def duration(self) -> timedelta | None:
        """How long the ready sends take at the rate (None: no rate limits them)."""
        if not self.rate_per_second:
            return None
        return timedelta(seconds=math.ceil(self.estimate_ready / self.rate_per_second))


def local_instant(text: str, zone: str) -> str:
    """A wall-clock time in ``zone`` (``2026-06-15T20:00``) as the ISO-8601 instant with
    offset that ``--at`` takes; blank stays blank (send now)."""
    if not text.strip():
        return ""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BroadcastError(f"timezone {zone!r}: an IANA zone, e.g. Asia/Shanghai") from None
    try:
        local = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BroadcastError(f"send time {text!r}: e.g. 2026-06-15T20:00") from None
    return local.replace(tzinfo=tz).isoformat()


def preview(
    factory: SessionFactory,
    plan: BroadcastPlan,
    *,
    at: datetime,
    rules: DeliveryRules,
    channel_rate: float | None = None,
    sample: int = SAMPLE,
    salt: str = PREVIEW_SALT,
) -> BroadcastPreview:
    """What the delivery policy would decide for ``plan``'s members if it were sent at
    ``at``: skipped by reason (held out by ``salt``'s draw of the plan's holdout, the global
    control group, unsubscribed, unreachable, over a frequency cap), held by quiet hours in
    each member's zone, or ready; and how long the ready sends take at the plan's rate, or
    ``channel_rate`` (the channel's broadcast rate) when that is slower. Over ``sample``
    members, a random ``sample`` of them is asked. Nothing is written."""
    with factory() as session:
        members = plan.audience.count(session, now=at)
        if members <= sample:
            ids = plan.audience.members(session, now=at, limit=max(sample, 1))
        else:
            cond = plan.audience.condition(session, at, correlated=False)
            stmt = select(User.id).where(cond).order_by(func.random()).limit(sample)
            ids = sorted(session.scalars(stmt))
    outcomes: Counter[tuple[str, str | None]] = Counter()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        # Never committed: the chunk's user locks (taken only when caps apply) end unchanged.
        with factory() as session:
            reads = ChunkReads(
                session, rules, user_ids=chunk, channel=plan.channel, topic=plan.topic, now=at
            )
            for user_id in chunk:
                if plan.holdout and holdout_group(salt, user_id, plan.holdout) == "holdout":
                    outcomes["skipped", HELD_OUT] += 1
                    continue
                order = _order(plan, user_id, at)
                decision = decide(reads.snapshot(order, Message()), rules)
                outcomes[decision.verdict, decision.reason] += 1
            session.rollback()
    rates = [r for r in (plan.rate_per_second, channel_rate) if r]
    return BroadcastPreview(
        at=at,
        members=members,
        asked=len(ids),
        ready=outcomes["ready", None],
        skipped={r or "": n for (v, r), n in outcomes.items() if v == "skipped"},
        deferred={r or "": n for (v, r), n in outcomes.items() if v == "deferred"},
        rate_per_second=min(rates) if rates else None,
    )


def _order(plan: BroadcastPlan, user_id: str, at: datetime) -> SendOrder:
    """The send a broadcast's page would decide for ``user_id`` (no broadcast id yet)."""
    return SendOrder(
        key=f"preview/{user_id}",
        user_id=user_id,
        channel=plan.channel,
        template=plan.template,
        topic=plan.topic,
        now=at,
        asked_by=BroadcastRecipient(0),
    )
