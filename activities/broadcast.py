"""A broadcast's pages: who the next audience members are, and the delivery policy for
each of them in one activity (the provider calls are ``send_message``, one per ready send,
on the channel's rate-limited task queue).

Each recipient goes through :meth:`DeliveryActivities.decide`, the journeys' policy: a
ledger row keyed by the broadcast's first execution run id + user id (a retried page finds
the rows it wrote and returns the same outcome), consent, reachability, quiet hours,
frequency caps. Quiet-hours deferrals are stored on the row (``deferred_until``) and asked
again by :meth:`BroadcastActivities.broadcast_deferred` when due.
"""

from __future__ import annotations

from collections.abc import Iterable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.delivery import PAUSED_RECHECK, DeliveryActivities
from audiences.audience import audience_from_data
from audiences.rules import AudienceError
from store.broadcasts import due_sends, held_sends, record_progress
from store.control import sends_paused
from store.db import SessionFactory, transaction
from store.models import Broadcast
from workflows.contracts import (
    BROADCAST_DEFERRED,
    BROADCAST_PAGE,
    RECORD_BROADCAST,
    BroadcastPage,
    BroadcastPageInput,
    BroadcastRecord,
    broadcast_delivery,
)

# Recipients decided per transaction: short transactions, so sends of the previous page
# (which write the same tables) are not kept waiting on SQLite's single writer.
CHUNK = 100


class BroadcastActivities:
    def __init__(self, factory: SessionFactory, delivery: DeliveryActivities):
        self._factory = factory
        self._delivery = delivery

    @activity.defn(name=BROADCAST_PAGE)
    def broadcast_page(self, inp: BroadcastPageInput) -> BroadcastPage:
        """The next page of audience members after ``inp.cursor`` (keyset, id order), each
        through the delivery policy."""
        with self._factory() as session:
            row = session.get(Broadcast, inp.broadcast_id)
            if row is None:
                raise ApplicationError(
                    f"no broadcast {inp.broadcast_id}", type="UnknownBroadcast", non_retryable=True
                )
            try:
                audience = audience_from_data(row.audience, source=f"broadcast {row.id}")
            except AudienceError as exc:  # checked at creation: do not retry
                raise ApplicationError(
                    str(exc), type="BadAudienceRule", non_retryable=True
                ) from exc
            if sends_paused(session):
                return BroadcastPage(next_cursor=inp.cursor, retry_at=inp.now + PAUSED_RECHECK)
            members = audience.members(session, now=inp.now, after=inp.cursor, limit=inp.limit)
        page = self._decide(inp, ((user_id, None) for user_id in members))
        page.paged = len(members)
        page.next_cursor = members[-1] if members else inp.cursor
        page.last_page = len(members) < inp.limit
        return page

    @activity.defn(name=BROADCAST_DEFERRED)
    def broadcast_deferred(self, inp: BroadcastPageInput) -> BroadcastPage:
        """The held sends due at ``inp.now``, asked again (sent, skipped, or held longer)."""
        with self._factory() as session:
            if sends_paused(session):
                return BroadcastPage(retry_at=inp.now + PAUSED_RECHECK)
            due = due_sends(session, broadcast_id=inp.broadcast_id, now=inp.now, limit=inp.limit)
        page = self._decide(inp, ((user_id or "", key) for user_id, key in due))
        page.last_page = len(due) < inp.limit
        return page

    @activity.defn(name=RECORD_BROADCAST)
    def record_broadcast(self, inp: BroadcastRecord) -> None:
        """Save the workflow's status, cursor and recipient count on the ``broadcasts`` row."""
        with transaction(self._factory) as session:
            record_progress(
                session,
                broadcast_id=inp.broadcast_id,
                status=inp.status,
                recipients=inp.recipients,
                cursor=inp.cursor,
                finished_at=inp.now if inp.finished else None,
            )

    def _decide(
        self, inp: BroadcastPageInput, recipients: Iterable[tuple[str, str | None]]
    ) -> BroadcastPage:
        """The policy for each (user id, ledger key or None for a new row)."""
        page = BroadcastPage()
        todo = list(recipients)
        for start in range(0, len(todo), CHUNK):
            activity.heartbeat(start)
            with transaction(self._factory) as session:
                for user_id, key in todo[start : start + CHUNK]:
                    request = broadcast_delivery(
                        broadcast_id=inp.broadcast_id,
                        key_prefix=inp.key_prefix,
                        user_id=user_id,
                        channel=inp.channel,
                        template=inp.template,
                        topic=inp.topic,
                        now=inp.now,
                    )
                    if key is not None:
                        request.idempotency_key = key
                    row = self._delivery.ledger_row(
                        session,
                        request,
                        enrollment_id=None,
                        journey_id=None,
                        step_id=None,
                        broadcast_id=inp.broadcast_id,
                    )
                    result = self._delivery.decide(session, request, row, held_checked=True)
                    if result.status == "ready":
                        page.ready.append(user_id)
                    elif result.status == "skipped" and result.reason:
                        page.skipped[result.reason] = page.skipped.get(result.reason, 0) + 1
                    elif result.status == "deferred":
                        row.deferred_until = result.defer_until
        with self._factory() as session:
            page.held, page.next_deferred_at = held_sends(session, broadcast_id=inp.broadcast_id)
        return page
