"""Routing failures: an infrastructure outage leaves events for a retry; a failure of the
event's own counts an attempt, and at the limit the event is parked in the dead-letter table
(``lifecycle events rejected``) until it is replayed."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from temporalio.service import RPCError, RPCStatusCode

from observability.metrics import metrics
from store.db import SessionFactory, transaction
from store.models import Event
from store.rejected import Rejection, add_rejections

# Routing logs under one name, whichever part of it speaks.
log = logging.getLogger("enrollment.router")

# Failures that say nothing about the event: the parts around it did not answer. They count
# no attempt, so an outage never parks good events.
_TRANSIENT_RPC = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.CANCELLED,
}


def is_transient(exc: BaseException) -> bool:
    """Whether a routing failure is the infrastructure's (retry as is), not the event's."""
    if isinstance(exc, RPCError):
        return exc.status in _TRANSIENT_RPC
    return isinstance(
        exc, OperationalError | InterfaceError | DisconnectionError | TimeoutError | OSError
    )


class RoutingIncomplete(Exception):
    """Some events could not be routed because Temporal or the database did not answer;
    they stay unrouted and are routed on a retry."""

    def __init__(self, event_ids: list[int]) -> None:
        super().__init__(f"events {event_ids} not routed: Temporal or the database is unreachable")
        self.event_ids = event_ids


def raw_event(event: Event) -> str:
    """A stored event as ASCII JSON, for the dead-letter table (whatever it holds)."""
    fields = {
        "messageId": event.message_id,
        "type": event.type,
        "userId": event.user_id,
        "event": event.event,
        "timestamp": event.timestamp.isoformat(),
        "properties": event.properties,
        "context": event.context,
    }
    try:
        return json.dumps(fields, ensure_ascii=True, default=str)
    except (ValueError, RecursionError) as exc:
        fields.pop("properties"), fields.pop("context")
        return json.dumps({**fields, "unprintable": str(exc)}, ensure_ascii=True, default=str)


class Parking:
    """Counts failed routing attempts and parks the events that reach ``max_attempts``."""

    def __init__(
        self, factory: SessionFactory, *, max_attempts: int, clock: Callable[[], datetime]
    ) -> None:
        self._factory = factory
        self.max_attempts = max_attempts
        self._clock = clock

    def own_failures(self, failed: list[tuple[Event, Exception]]) -> list[int]:
        """Log the failures of the events' own and count an attempt for each (run it in a
        thread); the ids of the events that failed only for the infrastructure."""
        own = [(event, exc) for event, exc in failed if not is_transient(exc)]
        for event, exc in own:
            log.warning(
                "routing event %s (%s) failed: %s: %s",
                event.id,
                event.message_id,
                type(exc).__name__,
                str(exc)[:300],
            )
        if own:
            self.count_attempts(own)
        return [event.id for event, exc in failed if is_transient(exc)]

    def count_attempts(self, failed: list[tuple[Event, Exception]]) -> None:
        """One more failed attempt for each event; those at the limit are parked."""
        errors = {event.id: exc for event, exc in failed}
        with transaction(self._factory) as session:
            session.execute(
                update(Event)
                .where(Event.id.in_(list(errors)))
                .values(route_attempts=Event.route_attempts + 1)
            )
            parked = [
                Rejection(
                    stage="route",
                    source="router",
                    reason=f"{type(errors[row.id]).__name__}: {str(errors[row.id])[:2000]}",
                    raw=raw_event(row),
                    message_id=row.message_id,
                    event_id=row.id,
                    attempts=row.route_attempts,
                )
                for row in session.scalars(
                    select(Event).where(
                        Event.id.in_(list(errors)),
                        Event.route_attempts == self.max_attempts,  # parked once
                        Event.routed_at.is_(None),
                    )
                )
            ]
            add_rejections(session, rows=parked, at=self._clock())
        for row in parked:
            log.error(
                "event %s (%s) parked after %d failed routing attempts; "
                "see `lifecycle events rejected`",
                row.event_id,
                row.message_id,
                row.attempts,
            )
        metrics().events_rejected("route", len(parked))
