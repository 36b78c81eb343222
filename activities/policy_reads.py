"""What the delivery policy knows about a send, read from the database into a
:class:`~activities.policy.Snapshot` before :func:`~activities.policy.decide` is asked.

:class:`PolicyReads` reads one send in the caller's transaction; :class:`ChunkReads`
answers a broadcast chunk's sends from a few statements for the whole chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import assert_never

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.orders import BroadcastRecipient, JourneyStep, SendOrder
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


class PolicyReads:
    """One send's reads, in the caller's session (whose transaction holds the locks)."""

    def __init__(self, session: Session, rules: DeliveryRules):
        self.session = session
        self.rules = rules

    def snapshot(self, order: SendOrder, row: Message) -> Snapshot:
        """What the policy needs to decide ``order``, whose ledger row is ``row``."""
        asked = Snapshot(
            now=order.now,
            topic=order.topic,
            user_id=order.user_id,
            channel=order.channel,
            paused_all=self.paused_all(),
        )
        match order.asked_by:
            case JourneyStep() as step:
                asked = replace(
                    asked,
                    group=step.group,
                    abandon=step.abandon,
                    quiet_hours=step.quiet_hours,
                    on_frequency_cap=step.on_frequency_cap,
                    journey_paused=journey_paused(self.session, journey_id=step.journey_id),
                )
            case BroadcastRecipient():
                pass  # the settings' policy, for everyone in the audience
            case _:
                assert_never(order.asked_by)
        user = self.user(order.user_id)
        if user is None:
            return replace(asked, user_known=False)
        consent = self.consent(order.user_id, order.channel, order.topic)
        coupon = coupon_of(self.session, order, user)
        expires = coupon.get("expires_at") if coupon else None
        return replace(
            asked,
            unsubscribed=consent is not None and consent.status == "unsubscribed",
            reachable=address(self.session, order.channel, user) is not None,
            coupon_expires_at=expires if isinstance(expires, datetime) else None,
            timezone=user.timezone,
            recent=self.recent(order, row),
        )

    def paused_all(self) -> bool:
        """Whether an operator paused all sends."""
        return sends_paused(self.session)

    def user(self, user_id: str) -> User | None:
        return self.session.get(User, user_id)

    def consent(self, user_id: str, channel: str, topic: str) -> Consent | None:
        return self.session.get(Consent, (user_id, channel, topic))

    def recent(self, order: SendOrder, row: Message) -> tuple[RecentSend, ...]:
        """The user's counted marketing sends that a cap could count, other than ``row``,
        read under the user's lock (two sends to one user take turns). None are read for a
        send no cap applies to."""
        longest = self.rules.longest_cap()
        if longest is None or order.topic != MARKETING:
            return ()
        lock_recipients(self.session, user_ids=[order.user_id])
        return recent_sends(
            self.session, user_id=order.user_id, since=order.now - longest, excluding=row.id
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

    def paused_all(self) -> bool:
        return False  # checked for the whole page

    def user(self, user_id: str) -> User | None:
        if user_id not in self._chunk:
            return super().user(user_id)
        return self._users.get(user_id)

    def consent(self, user_id: str, channel: str, topic: str) -> Consent | None:
        if user_id not in self._chunk or (channel, topic) != self._asked:
            return super().consent(user_id, channel, topic)
        return self._consents.get(user_id)

    def recent(self, order: SendOrder, row: Message) -> tuple[RecentSend, ...]:
        if order.user_id in self._fresh:
            return ()
        return super().recent(order, row)
