"""Replaying the dead-letter table: a refused call judged again, a parked event routed again.

``lifecycle events replay ID`` calls :func:`replay`. A call the API refused is parsed again
under today's limits (optionally from a corrected copy) with its original receive time, and
stored if it passes; an event the router parked gets its attempts reset, so the worker's
pending-event loop routes it on its next round.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update

from store.db import SessionFactory, transaction
from store.models import Event, RejectedEvent
from store.rejected import mark_replayed
from triggers.ingest import store_messages
from triggers.segment import (
    MESSAGE_TYPES,
    Limits,
    Message,
    PayloadError,
    decode_json,
    parse_batch,
    parse_call,
    raw_json,
)


class ReplayError(Exception):
    """The row cannot be replayed (unknown, already replayed, or still refused)."""


@dataclass(frozen=True)
class Replayed:
    """What a replay did, in a sentence, and the stored message id if it stored one."""

    result: str
    message_id: str | None = None


def _judge(row: RejectedEvent, data: Any, limits: Limits) -> Message:
    """Parse ``data`` as the call ``row`` was, at its original receive time."""
    if row.source == "/v1/batch":
        parsed = parse_batch({"batch": [data]}, received_at=row.received_at, limits=limits)
        if parsed.refused:
            first = parsed.refused[0]
            raise PayloadError(first.reason, field=first.field)
        return parsed.messages[0]
    kind = row.source.rsplit("/", 1)[-1]
    if kind not in MESSAGE_TYPES or not isinstance(data, dict):
        raise PayloadError(f"calls to {row.source} cannot be replayed")
    return parse_call(kind, data, received_at=row.received_at, limits=limits)  # type: ignore[arg-type]


def replay(
    factory: SessionFactory,
    *,
    rejected_id: int,
    limits: Limits,
    now: datetime,
    corrected: str | None = None,
) -> Replayed:
    """Replay one row of the dead-letter table.

    Args:
        factory: the database.
        rejected_id: the row's id (``lifecycle events rejected`` lists them).
        limits: today's limits (a refusal for size or depth may pass after a change).
        now: when the replay happened, recorded on the row.
        corrected: a fixed copy of a refused call, as JSON text; it replaces the raw call.

    Raises:
        ReplayError: unknown id, already replayed, or refused again (the row keeps waiting,
            with the new reason).
    """
    with transaction(factory) as session:
        row = session.get(RejectedEvent, rejected_id)
        if row is None:
            raise ReplayError(f"no rejected event #{rejected_id}")
        if row.replayed_at is not None:
            raise ReplayError(
                f"#{rejected_id} was replayed at {row.replayed_at:%Y-%m-%d %H:%M:%S} UTC: "
                f"{row.replay_result}"
            )
        if row.stage == "route":
            if corrected is not None:
                raise ReplayError(
                    "a parked event is replayed as stored; --with is for refused calls"
                )
            session.execute(
                update(Event)
                .where(Event.id == row.event_id, Event.routed_at.is_(None))
                .values(route_attempts=0)
            )
            result = "queued: the worker's pending-event loop routes it within a minute"
            mark_replayed(session, rejected_id=rejected_id, at=now, result=result)
            return Replayed(result, row.message_id)
        if row.source.startswith("/webhooks/"):
            raise ReplayError(
                f"#{rejected_id} is a provider's webhook delivery ({row.source}): kept to be "
                "read, it cannot be replayed"
            )
        text = corrected if corrected is not None else row.raw
        refused: str | None = None
        if corrected is not None:
            row.raw = raw_json(decode_json_or_text(corrected))
        try:
            message = _judge(row, decode_json(text.encode("utf-8", "surrogatepass")), limits)
        except PayloadError as exc:
            # Kept waiting, with what was wrong this time (committed: no raise in here).
            row.reason, row.field = exc.message, exc.field
            row.attempts += 1
            refused = exc.message
        else:
            inserted = store_messages(session, messages=[message])
            if message.message_id in inserted:
                result = f"stored as {message.message_id}"
            else:
                result = f"{message.message_id} was already stored; nothing changed"
            mark_replayed(session, rejected_id=rejected_id, at=now, result=result)
    if refused is not None:
        raise ReplayError(f"#{rejected_id} is still refused: {refused}")
    return Replayed(result, message.message_id)


def decode_json_or_text(text: str) -> Any:
    """``text`` decoded if it is JSON, else kept as a string (so a bad fix is kept too)."""
    try:
        return decode_json(text.encode("utf-8", "surrogatepass"))
    except PayloadError:
        return text


__all__ = ["ReplayError", "Replayed", "replay"]
