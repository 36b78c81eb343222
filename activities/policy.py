"""The delivery policy as a pure function: :func:`decide` over a :class:`Snapshot` of what
the database said about one send, read beforehand (:mod:`activities.policy_reads`).

The rules, in the order they are asked (the first that applies wins): a send given up by
its run; an operator's pause-all; a paused journey; an unknown user; the holdout group;
the global control group (marketing sends only); an unsubscribed user; no address on the
channel; an expired coupon; then, for marketing sends only, quiet hours in the user's zone
and the frequency caps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import kinds
from activities.profiles import next_local_time
from config import Settings
from store.ledger import MARKETING, RecentSend
from store.program import in_global_control

# How often a send held by a pause asks again (a timer per hour of pause).
PAUSED_RECHECK = timedelta(hours=1)
# What a decision says: send now (the row becomes ``sending``), never, or later.
Verdict = Literal["ready", "skipped", "deferred"]


@dataclass(frozen=True)
class QuietHours:
    """A nightly window in local time, e.g. 21:00–08:00 (it may cross midnight)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"21:00-08:00"`` → QuietHours(21:00, 08:00)."""
        start, end = (time.fromisoformat(part) for part in text.split("-"))
        return cls(start, end)

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def defer_until(self, now: datetime, zone: str) -> datetime | None:
        """The instant the window ends, if ``now`` is inside it in ``zone``; else None.

        Computed on the wall clock of ``zone``, so a DST change inside the night moves the
        instant, not the local hour.
        """
        local = now.astimezone(ZoneInfo(zone))
        if not self.contains(local.time().replace(second=0, microsecond=0)):
            return None
        return next_local_time(now, self.end.strftime("%H:%M"), zone)


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``limit`` marketing sends per user in ``window`` (on ``channel``, or on all
    channels when it is None), counted across every journey."""

    limit: int
    window: timedelta
    channel: str | None = None


@dataclass(frozen=True)
class DeliveryRules:
    """The policy's settings: quiet hours (a journey may override them), frequency caps,
    and the zone of a user whose profile names none (or one that does not exist)."""

    quiet_hours: QuietHours | None = None
    caps: tuple[FrequencyCap, ...] = ()
    default_timezone: str = "Asia/Shanghai"
    # The global control group (store.program): this percent of users gets no marketing.
    global_control_percent: float = 0.0
    global_control_salt: str = "global-control"

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryRules:
        """The rules settings ask for: their quiet hours, their caps (a limit of 0 is no
        cap), the default zone and the global control group."""
        caps = []
        if settings.cap_sms_per_day:
            caps.append(FrequencyCap(settings.cap_sms_per_day, timedelta(days=1), kinds.SMS.name))
        if settings.cap_marketing_per_week:
            caps.append(FrequencyCap(settings.cap_marketing_per_week, timedelta(days=7)))
        return cls(
            quiet_hours=QuietHours.parse(settings.quiet_hours) if settings.quiet_hours else None,
            caps=tuple(caps),
            default_timezone=settings.default_timezone,
            global_control_percent=settings.global_control_percent,
            global_control_salt=settings.global_control_salt,
        )

    def in_global_control(self, user_id: str) -> bool:
        return in_global_control(
            user_id, percent=self.global_control_percent, salt=self.global_control_salt
        )

    def longest_cap(self) -> timedelta | None:
        """The widest cap window: how far back recent sends matter (None: no caps)."""
        return max((cap.window for cap in self.caps), default=None)


@dataclass(frozen=True)
class Snapshot:
    """What the policy knows about one send, read from the database beforehand.

    ``recent`` holds the user's counted marketing sends within the longest cap window
    (other than this one); a caller that knows none exist leaves it empty.
    """

    now: datetime
    topic: str
    user_id: str = ""
    channel: str | None = None  # the channel this send goes out on: a channel's cap holds it
    group: str = "treatment"
    abandon: str | None = None  # the run gave the send up (goal reached, exited, restarted)
    paused_all: bool = False
    journey_paused: bool = False
    user_known: bool = True
    unsubscribed: bool = False
    reachable: bool = True
    coupon_expires_at: datetime | None = None
    timezone: str | None = None  # the profile's IANA zone, as stored
    quiet_hours: str | None = None  # the journey's own window, "off", or None: the rules'
    on_frequency_cap: str = "skip"  # or "defer"
    recent: tuple[RecentSend, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The policy's answer: ``ready`` to send, or skipped / deferred with the reason (and,
    deferred, the instant to ask again)."""

    verdict: Verdict
    reason: str | None = None
    until: datetime | None = None


READY = Decision("ready")


def decide(snapshot: Snapshot, rules: DeliveryRules) -> Decision:
    """Whether the send of ``snapshot`` goes out now, never, or later, under ``rules``."""
    s = snapshot
    if s.abandon:
        return _skip(s.abandon)
    if s.paused_all:  # an operator's stop-all
        return Decision("deferred", "paused_all", s.now + PAUSED_RECHECK)
    if s.journey_paused:  # held, not lost: the run asks again later, with the same row
        return Decision("deferred", "journey_paused", s.now + PAUSED_RECHECK)
    if not s.user_known:
        return _skip("unknown_user")
    if s.group == "holdout":
        return _skip("held_out")
    if s.topic == MARKETING and rules.in_global_control(s.user_id):
        return _skip("global_control")  # transactional messages still go
    if s.unsubscribed:
        return _skip("unsubscribed")
    if not s.reachable:
        return _skip("unreachable")
    if s.coupon_expires_at is not None and s.coupon_expires_at <= s.now:
        return _skip("coupon_expired")  # a nudge whose coupon is gone is not sent
    if s.topic != MARKETING:
        return READY  # transactional: no quiet hours, no caps
    quiet = rules.quiet_hours
    if s.quiet_hours is not None:
        quiet = None if s.quiet_hours == "off" else QuietHours.parse(s.quiet_hours)
    if quiet is not None:
        later = quiet.defer_until(s.now, valid_zone(s.timezone, rules.default_timezone))
        if later is not None:
            return Decision("deferred", "quiet_hours", later)
    room_at = room_again_at(s.recent, rules.caps, now=s.now, channel=s.channel)
    if room_at is not None:
        if s.on_frequency_cap == "defer":
            return Decision("deferred", "frequency_cap", room_at)
        return _skip("frequency_cap")
    return READY


def room_again_at(
    recent: tuple[RecentSend, ...],
    caps: tuple[FrequencyCap, ...],
    *,
    now: datetime,
    channel: str | None = None,
) -> datetime | None:
    """If a cap on a send on ``channel`` is reached, when there is room again (the first
    such cap decides); None if there is room now.

    A cap on one channel (one marketing SMS a day) counts that channel's sends and holds
    only sends on it: the day's SMS leaves room for a push. A cap without a channel counts
    and holds every channel. A send whose channel is not known is held by every cap.
    """
    for cap in caps:
        if cap.channel is not None and channel is not None and cap.channel != channel:
            continue
        counted = sorted(
            (
                sent.sent_at
                for sent in recent
                if sent.sent_at > now - cap.window
                and (cap.channel is None or sent.channel == cap.channel)
            ),
            reverse=True,
        )
        if len(counted) >= cap.limit:
            # Room again once the send that makes the count reach the limit ages out.
            return counted[cap.limit - 1] + cap.window
    return None


def valid_zone(zone: str | None, default: str) -> str:
    """``zone`` if it names a time zone, else ``default``."""
    if not zone:
        return default
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return default
    return zone


def _skip(reason: str) -> Decision:
    return Decision("skipped", reason)
