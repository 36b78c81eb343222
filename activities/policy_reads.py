"""What the delivery policy knows about a send, read from the database into a
:class:`~activities.policy.Snapshot` before :func:`~activities.policy.decide` is asked.

:class:`PolicyReads` reads one send in the caller's transaction; :class:`ChunkReads`
answers a broadcast chunk's sends from a few statements for the whole chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.policy import DeliveryRules, Snapshot
from activities.send_context import address, coupon_of
from store.control import sends_paused
from store.journeys import journey_paused
from store.ledger import (
    MARKETING,
    RecentSend,
    lock_recipients,
    recent_sends,
    users_with_recent_sends,
)
from store.models import Consent, Message, User
from workflows.contracts import DeliverInput


class PolicyReads:
    """One send's reads, in the caller's session (whose transaction holds the locks)."""

    def __init__(self, session: Session, rules: DeliveryRules):
        self.session = session
        self.rules = rules

    def snapshot(self, inp: DeliverInput, row: Message) -> Snapshot:
        """What the policy needs to decide ``inp``, whose ledger row is ``row``."""
        paused_all, paused = self.pauses(inp.journey_id)
        asked = Snapshot(
            now=inp.now,
            topic=inp.topic,
            group=inp.group,
            abandon=inp.abandon,
            quiet_hours=inp.quiet_hours,
            on_frequency_cap=inp.on_frequency_cap,
            paused_all=paused_all,
            journey_paused=paused,
        )
        user = self.user(inp.user_id)
        if user is None:
            return replace(asked, user_known=False)
        consent = self.consent(inp.user_id, inp.channel, inp.topic)
        coupon = coupon_of(self.session, inp, user)
        expires = coupon.get("expires_at") if coupon else None
        return replace(
            asked,
            unsubscribed=consent is not None and consent.status == "unsubscribed",
            reachable=address(self.session, inp.channel, user) is not None,
            coupon_expires_at=expires if isinstance(expires, datetime) else None,
            timezone=user.timezone,
            recent=self.recent(inp, row),
        )

    def pauses(self, journey_id: str) -> tuple[bool, bool]:
        """Whether an operator paused all sends, and whether the journey is paused."""
        return sends_paused(self.session), journey_paused(self.session, journey_id=journey_id)

    def user(self, user_id: str) -> User | None:
        return self.session.get(User, user_id)

    def consent(self, user_id: str, channel: str, topic: str) -> Consent | None:
        return self.session.get(Consent, (user_id, channel, topic))

    def recent(self, inp: DeliverInput, row: Message) -> tuple[RecentSend, ...]:
        """The user's counted marketing sends that a cap could count, other than ``row``,
        read under the user's lock (two sends to one user take turns). None are read for a
        send no cap applies to."""
        longest = self.rules.longest_cap()
        if longest is None or inp.topic != MARKETING:
            return ()
        lock_recipients(self.session, user_ids=[inp.user_id])
        return recent_sends(
            self.session, user_id=inp.user_id, since=inp.now - longest, excluding=row.id
        )


class ChunkReads(PolicyReads):
    """A broadcast chunk's reads: the operator's pause is checked once per page by the
    caller; the chunk's users are locked at once, and those with no recent counted send
    (no cap can stop them) are known without a look each; the users and their consents
    for the broadcast's channel and topic are read in one statement each."""

    def __init__(
        self,
        session: Session,
        rules: DeliveryRules,
        *,
        user_ids: Sequence[str],
        channel: str,
        topic: str,
        now: datetime,
    ):
        super().__init__(session, rules)
        self._chunk = set(user_ids)
        self._fresh = set(user_ids)
        longest = rules.longest_cap()
        if longest is not None and user_ids:
            # Locked before they are loaded: the lock's UPDATE then has no loaded users to
            # bring up to date, and the policy reads them as they are under the lock.
            lock_recipients(session, user_ids=user_ids)
            self._fresh -= users_with_recent_sends(session, user_ids=user_ids, since=now - longest)
        users = session.scalars(select(User).where(User.id.in_(user_ids)))
        self._users = {user.id: user for user in users}
        consents = session.scalars(
            select(Consent).where(
                Consent.user_id.in_(user_ids), Consent.channel == channel, Consent.topic == topic
            )
        )
        self._consents = {consent.user_id: consent for consent in consents}
        self._asked = (channel, topic)

    def pauses(self, journey_id: str) -> tuple[bool, bool]:
        return False, False  # checked for the whole page

    def user(self, user_id: str) -> User | None:
        if user_id not in self._chunk:
            return super().user(user_id)
        return self._users.get(user_id)

    def consent(self, user_id: str, channel: str, topic: str) -> Consent | None:
        if user_id not in self._chunk or (channel, topic) != self._asked:
            return super().consent(user_id, channel, topic)
        return self._consents.get(user_id)

    def recent(self, inp: DeliverInput, row: Message) -> tuple[RecentSend, ...]:
        if inp.user_id in self._fresh:
            return ()
        return super().recent(inp, row)
