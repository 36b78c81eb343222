"""Storing calls: events once by ``messageId``, profiles upserted, then routing.

One request is one transaction: every event of the request and every profile change commit
together or not at all. Routing happens after the commit; an event whose routing failed keeps
``routed_at`` empty and is routed when the client retries the same ``messageId``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Table, insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from observability.metrics import metrics
from store.clock import Clock, utc_now
from store.db import SessionFactory, json_dumps, transaction
from store.models import Event, RejectedEvent
from store.rejected import Rejection, add_rejections
from triggers.profiles import upsert_profiles
from triggers.segment import Message, Refusal

log = logging.getLogger(__name__)


class EventRouter(Protocol):
    """Acts on stored events: starts or signals journeys, then sets ``routed_at`` itself."""

    async def route(self, event_ids: list[int]) -> None:
        """Route the stored events ``event_ids`` (all with ``routed_at`` still empty)."""
        ...


class RunEnder(Protocol):
    """Ends journey runs: an erased user's, whose profile is gone."""

    async def end_runs(self, workflow_ids: list[str], *, reason: str) -> None: ...


class RoutingFailed(Exception):
    """The events were stored but the router raised; the client should retry."""

    def __init__(self, event_ids: list[int]) -> None:
        super().__init__(f"routing failed for events {event_ids}")
        self.event_ids = event_ids


def mark_routed(session: Session, *, event_ids: Sequence[int], at: datetime) -> None:
    """Set ``routed_at`` on the given events that do not have it yet."""
    if event_ids:
        session.execute(
            update(Event)
            .where(Event.id.in_(list(event_ids)), Event.routed_at.is_(None))
            .values(routed_at=at)
        )


class NullRouter:
    """Marks events routed and does nothing else: for tools that only ingest."""

    def __init__(self, session_factory: SessionFactory, *, clock: Clock = utc_now) -> None:
        self._factory = session_factory
        self._clock = clock

    async def route(self, event_ids: list[int]) -> None:
        await run_in_threadpool(self._mark, event_ids)

    def _mark(self, event_ids: list[int]) -> None:
        with transaction(self._factory) as session:
            mark_routed(session, event_ids=event_ids, at=self._clock())


# The events some journey acts on, as the versions stand in the session's transaction.
ActedOn = Callable[[Session], frozenset[str]]


def needs_routing(message: Message, acted_on: frozenset[str] | None = None) -> bool:
    """Only a track call naming a user can start or advance a journey, and of those only the
    events some journey acts on (``acted_on``; None: any event)."""
    return (
        message.type == "track"
        and message.user_id is not None
        and (acted_on is None or message.event in acted_on)
    )


def _event_row(message: Message, acted_on: frozenset[str] | None = None) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "type": message.type,
        "user_id": message.user_id,
        "anonymous_id": message.anonymous_id,
        "event": message.event,
        "properties": message.properties,
        "context": message.context,
        "timestamp": message.timestamp,
        "received_at": message.received_at,
        # Nothing acts on other calls, so they are routed as they arrive.
        "routed_at": None if needs_routing(message, acted_on) else message.received_at,
    }


def insert_events(
    session: Session, *, messages: Sequence[Message], acted_on: frozenset[str] | None = None
) -> dict[str, int]:
    """Insert events unless their ``messageId`` is stored; the ones actually inserted, by
    ``messageId``, with their row ids. Events outside ``acted_on`` are stored routed."""
    rows = [_event_row(m, acted_on) for m in messages]
    if not rows:
        return {}
    table: Table = Event.__table__  # type: ignore[assignment]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return _insert_events_pg(session, rows)
    if dialect == "sqlite":
        stmt = (
            sqlite.insert(table)
            .on_conflict_do_nothing(index_elements=["message_id"])
            .returning(table.c.message_id, table.c.id)
        )
        return {message_id: event_id for message_id, event_id in session.execute(stmt, rows)}
    inserted: list[str] = []
    for row in rows:  # any other dialect: one savepoint per row
        try:
            with session.begin_nested():
                session.execute(insert(table), row)
        except IntegrityError:
            continue
        inserted.append(row["message_id"])
    found = session.execute(
        select(Event.message_id, Event.id).where(Event.message_id.in_(inserted))
    )
    return {message_id: event_id for message_id, event_id in found}


# One statement whatever the batch: each column travels as one array parameter (psycopg
# dumps lists of text and datetimes in C), so PostgreSQL parses one short statement and the
# rows go in one round trip. JSON columns travel as text, encoded by orjson.
_INSERT_EVENTS_PG = (
    "INSERT INTO events (message_id, type, user_id, anonymous_id, event, properties, context,"
    " timestamp, received_at, routed_at)"
    " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[],"
    " %b::text[]::jsonb[], %b::text[]::jsonb[],"
    " %b::timestamptz[], %b::timestamptz[], %b::timestamptz[])"
    " ON CONFLICT (message_id) DO NOTHING RETURNING message_id, id"
)


def _insert_events_pg(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """The batch as one ``INSERT ... SELECT FROM unnest(arrays)`` through psycopg: neither
    a multi-row VALUES statement (long, re-parsed per batch) nor one statement per row."""
    connection = session.connection().connection.driver_connection
    assert connection is not None
    columns = (
        [r["message_id"] for r in rows],
        [r["type"] for r in rows],
        [r["user_id"] for r in rows],
        [r["anonymous_id"] for r in rows],
        [r["event"] for r in rows],
        [json_dumps(r["properties"]) for r in rows],
        [json_dumps(r["context"]) for r in rows],
        [r["timestamp"] for r in rows],
        [r["received_at"] for r in rows],
        [r["routed_at"] for r in rows],
    )
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_EVENTS_PG, columns)
        return {message_id: event_id for message_id, event_id in cursor.fetchall()}


def unrouted_event_ids(session: Session, *, message_ids: Sequence[str]) -> list[int]:
    """Ids of these events that still need routing, oldest first."""
    ids: list[int] = []
    unique = list(dict.fromkeys(message_ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        ids.extend(
            session.scalars(
                select(Event.id).where(
                    Event.message_id.in_(chunk),
                    Event.routed_at.is_(None),
                    Event.type == "track",
                    Event.user_id.is_not(None),
                )
            )
        )
    return sorted(ids)


def store_messages(
    session: Session, *, messages: Sequence[Message], acted_on: frozenset[str] | None = None
) -> dict[str, int]:
    """Store events and upsert the profiles they name; the newly stored events' row ids by
    message id.

    A duplicate (already stored ``messageId``) changes nothing: its profile effects were
    applied with its first delivery.
    """
    first_of: dict[str, Message] = {}
    for message in messages:
        first_of.setdefault(message.message_id, message)
    unique = list(first_of.values())
    inserted = insert_events(session, messages=unique, acted_on=acted_on)
    by_user: dict[str, list[Message]] = defaultdict(list)
    for message in unique:
        if message.user_id is not None and message.message_id in inserted:
            by_user[message.user_id].append(message)
    if by_user:
        upsert_profiles(session, messages_by_user=by_user)
    return inserted


def store_refusals(
    session: Session, *, refused: Sequence[Refusal], source: str, at: datetime
) -> int:
    """Put refused calls in the dead-letter table; returns how many rows were added.

    A call refused again with the same ``messageId`` (a client retrying its batch) that still
    waits for a replay is not added twice.
    """
    ids = [r.message_id for r in refused if r.message_id]
    known: set[str] = set()
    for start in range(0, len(ids), 500):
        known.update(
            m
            for m in session.scalars(
                select(RejectedEvent.message_id).where(
                    RejectedEvent.stage == "ingest",
                    RejectedEvent.replayed_at.is_(None),
                    RejectedEvent.message_id.in_(ids[start : start + 500]),
                )
            )
            if m is not None
        )
    rows = [
        Rejection(
            stage="ingest",
            source=source,
            reason=r.reason,
            raw=r.raw,
            message_id=r.message_id,
            field=r.field,
        )
        for r in refused
        if r.message_id is None or r.message_id not in known
    ]
    add_rejections(session, rows=rows, at=at)
    return len(rows)


class Ingestor:
    """Stores one request's calls in one transaction, then hands them to the router."""

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        router: EventRouter,
        acted_on: ActedOn | None = None,
    ) -> None:
        """``acted_on`` names the events some journey acts on (see
        ``enrollment.router.ActedOnEvents``); the others are stored routed and never reach
        the router. None hands every user's track call to the router."""
        self._factory = session_factory
        self._router = router
        self._acted_on = acted_on

    def store(
        self,
        messages: Sequence[Message],
        *,
        refused: Sequence[Refusal] = (),
        source: str = "",
        at: datetime | None = None,
    ) -> list[int]:
        """Commit the calls, and the refused ones to the dead-letter table; returns ids of
        this request's events that still need routing."""
        with transaction(self._factory) as session:
            acted_on = self._acted_on(session) if self._acted_on is not None else None
            routable = [m.message_id for m in messages if needs_routing(m, acted_on)]
            inserted = store_messages(session, messages=messages, acted_on=acted_on)
            parked = 0
            if refused:
                when = at or (messages[0].received_at if messages else utc_now())
                parked = store_refusals(session, refused=refused, source=source, at=when)
            # New events need routing; a duplicate may too, if its first delivery was stored
            # but never routed (looked up in the same transaction).
            again = [m for m in routable if m not in inserted]
            pending = [inserted[m] for m in routable if m in inserted]
            if again:
                pending += unrouted_event_ids(session, message_ids=again)
            pending = sorted(set(pending))
        log.info(
            "stored %d new event(s), %d duplicate(s), %d refused",
            len(inserted),
            len(messages) - len(inserted),
            len(refused),
        )
        metrics().events_stored(messages, inserted)
        metrics().events_rejected("ingest", parked)
        return pending

    async def ingest(
        self,
        messages: Sequence[Message],
        *,
        refused: Sequence[Refusal] = (),
        source: str = "",
        at: datetime | None = None,
    ) -> None:
        """Store, then route; raises :class:`RoutingFailed` if the router raised."""
        event_ids = await run_in_threadpool(
            lambda: self.store(messages, refused=refused, source=source, at=at)
        )
        if not event_ids:
            return
        try:
            await self._router.route(event_ids)
        except Exception as exc:
            log.exception("router failed for event ids %s", event_ids)
            raise RoutingFailed(event_ids) from exc
