"""The outbox table behind the ``outbox`` channel."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.clock import utc_now
from store.db import SessionFactory, transaction
from store.models import OutboxMessage


class OutboxRecord(Protocol):
    """What the outbox keeps of a message (the outbox channel's ``OutboundMessage`` has it)."""

    @property
    def key(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def to(self) -> str: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def title(self) -> str | None: ...
    @property
    def body(self) -> str: ...
    @property
    def html(self) -> str | None: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


class SqlOutboxSink:
    """Records outbound messages once per ledger key (a retried send records nothing new)."""

    def __init__(self, factory: SessionFactory, clock: Callable[[], datetime] | None = None):
        self._factory = factory
        self._clock = clock or utc_now

    def record(self, message: OutboxRecord) -> int:
        """The outbox row's id: inserted, or the one a retried send stored before.

        Core statements on the session's connection: one insert (no ORM unit of work),
        and a lookup only when the key was there already.
        """
        table: Table = OutboxMessage.__table__  # type: ignore[assignment]
        values = {
            "message_key": message.key,
            "channel": message.channel,
            "recipient": message.to,
            "subject": message.subject or message.title,
            "body": message.body,
            "html": message.html,
            "data": dict(message.data),
            "created_at": self._clock(),
        }
        with transaction(self._factory) as session:
            connection = session.connection()
            insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            stmt = insert(table).on_conflict_do_nothing().returning(table.c.id)
            row_id = connection.execute(stmt, values).scalar()
            if row_id is None:
                row_id = connection.execute(
                    select(table.c.id).where(table.c.message_key == message.key)
                ).scalar()
        assert row_id is not None
        return int(row_id)


def list_outbox(session: Session, *, limit: int = 50) -> list[OutboxMessage]:
    """The most recent outbox messages, newest first."""
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    return list(session.scalars(stmt))
