"""A broadcast's pages: who the next audience members are, and the delivery policy for
each of them in one activity (the provider calls are ``send_batch``, a batch of ready sends
each, on the channel's rate-limited bulk task queue).

Each recipient is a send order of its own (:class:`activities.orders.BroadcastRecipient`,
not a journey step) and goes through :meth:`DeliveryActivities.decide`, the journeys'
policy: a ledger row keyed by the broadcast's first execution run id + user id (a retried
page finds the rows it wrote and returns the same outcome), consent, reachability, quiet
hours, frequency caps. Quiet-hours deferrals are stored on the row (``deferred_until``) and asked
again by :meth:`BroadcastActivities.broadcast_deferred` when due.

A broadcast with a holdout (``broadcasts.holdout``, a percent) holds each member out or not
by the journeys' salted hash (:func:`enrollment.entries.holdout_group`) of the broadcast's
workflow id and the user id, so a retried page makes the same choice; a held-out member's row
is skipped ``held_out``, as a journey's holdout is, before the policy is asked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.delivery import DeliveryActivities
from activities.orders import SendOrder, broadcast_order
from activities.policy import PAUSED_RECHECK
from activities.policy_reads import ChunkReads
from audiences.audience import audience_from_data
from audiences.rules import AudienceError
from enrollment.entries import holdout_group
from observability.metrics import metrics
from store.broadcasts import HELD_OUT, due_sends, held_sends, record_progress
from store.control import sends_paused
from store.db import SessionFactory, transaction
from store.ledger import SendStatus, mark_failed, mark_skipped, open_sends
from store.models import Broadcast, Message
from workflows.broadcast_contracts import (
    BROADCAST_DEFERRED,
    BROADCAST_PAGE,
    RECORD_BROADCAST,
    BroadcastPage,
    BroadcastPageInput,
    BroadcastRecord,
)
from workflows.ids import broadcast_workflow_id

# Recipients decided per transaction: short transactions, so sends of the previous page
# (which write the same tables) are not kept waiting on SQLite's single writer.
CHUNK = 100
log = logging.getLogger(__name__)


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
            holdout = row.holdout
        page = self._decide(inp, ((user_id, None) for user_id in members), holdout=holdout)
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
        self,
        inp: BroadcastPageInput,
        recipients: Iterable[tuple[str, str | None]],
        *,
        holdout: float = 0,
    ) -> BroadcastPage:
        """The policy for each (user id, ledger key or None for a new row), but for the
        members ``holdout`` (a percent) holds out.

        Per chunk, in one transaction: the ledger rows are written in one statement and read
        (locked) in one, the policy's reads are made for the whole chunk (:class:`ChunkReads`:
        only users with recent sends are counted against the caps one by one), and the rows
        the policy changed are written together at the commit. The policy itself is the
        journeys' (:meth:`DeliveryActivities.decide`), asked for each recipient.
        """
        page = BroadcastPage()
        todo = list(recipients)
        for start in range(0, len(todo), CHUNK):
            activity.heartbeat(start)
            # A held send asks again with its own row's key.
            orders = [
                broadcast_order(inp, user_id, key=key)
                for user_id, key in todo[start : start + CHUNK]
            ]
            try:
                decided = self._decide_chunk(inp, orders, isolated=False, holdout=holdout)
            except Exception:
                # One recipient's data broke the policy (or the database failed): the chunk
                # is decided again from the start, each recipient on a savepoint of its own,
                # so only that recipient fails. A database failure raises again, and the
                # attempt is retried.
                decided = self._decide_chunk(inp, orders, isolated=True, holdout=holdout)
            for user_id, status, reason in decided:
                if status == "ready":
                    page.ready.append(user_id)
                elif status == SendStatus.SKIPPED and reason:
                    page.skipped[reason] = page.skipped.get(reason, 0) + 1
        with self._factory() as session:
            page.held, page.next_deferred_at = held_sends(session, broadcast_id=inp.broadcast_id)
        return page

    def _decide_chunk(
        self,
        inp: BroadcastPageInput,
        orders: list[SendOrder],
        *,
        isolated: bool,
        holdout: float = 0,
    ) -> list[tuple[str, str, str | None]]:
        """(user id, status, reason) of each order, decided and committed together;
        ``isolated``: each recipient on a savepoint, a failure recorded on its row."""
        decided: list[tuple[str, str, str | None]] = []
        with transaction(self._factory) as session:
            rows = open_sends(session, sends=[order.new_send() for order in orders])
            reads = ChunkReads(
                session,
                self._delivery.rules,
                user_ids=[order.user_id for order in orders],
                channel=inp.channel,
                topic=inp.topic,
                now=inp.now,
            )
            for order in orders:
                row = rows[order.key]
                if holdout and _hold_out(inp, order.user_id, row, holdout):
                    decided.append((order.user_id, SendStatus.SKIPPED, HELD_OUT))
                    continue
                if not isolated:
                    result = self._delivery.decide(reads, order, row)
                else:
                    try:
                        with session.begin_nested():
                            result = self._delivery.decide(reads, order, row)
                    except Exception:
                        # One recipient's data never holds the page: a retry would fail the
                        # same way. Recorded as failed, with its reason, and the page goes on.
                        log.exception(
                            "broadcast %s: the policy failed for one recipient", inp.broadcast_id
                        )
                        mark_failed(row, reason="policy_error")
                        # Counted with the page's skips, by its reason.
                        decided.append((order.user_id, SendStatus.SKIPPED, "policy_error"))
                        continue
                decided.append((order.user_id, result.status, result.reason))
        return decided


def _hold_out(inp: BroadcastPageInput, user_id: str, row: Message, holdout: float) -> bool:
    """Whether ``user_id`` is held out of the broadcast (``holdout`` percent of its
    audience); a new row of a held-out member is skipped ``held_out``. A row an earlier
    attempt decided keeps its outcome (the same, the choice being the same)."""
    salt = broadcast_workflow_id(inp.broadcast_id)
    if holdout_group(salt, user_id, holdout) != "holdout":
        return False
    if row.status == SendStatus.PENDING:
        mark_skipped(row, reason=HELD_OUT)
        metrics().policy_outcome(inp.channel, SendStatus.SKIPPED, HELD_OUT)
    return True
