"""The outbox table behind the ``outbox`` channel."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.db import SessionFactory, transaction
from store.models import OutboxMessage
from store.upsert import insert_ignore


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
        self._clock = clock or (lambda: datetime.now(UTC))

    def record(self, message: OutboxRecord) -> int:
        with transaction(self._factory) as session:
            insert_ignore(
                session,
                OutboxMessage,
                values={
                    "message_key": message.key,
                    "channel": message.channel,
                    "recipient": message.to,
                    "subject": message.subject or message.title,
                    "body": message.body,
                    "html": message.html,
                    "data": dict(message.data),
                    "created_at": self._clock(),
                },
            )
            row_id = session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.message_key == message.key)
            )
        assert row_id is not None
        return row_id


def list_outbox(session: Session, *, limit: int = 50) -> list[OutboxMessage]:
    """The most recent outbox messages, newest first."""
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    return list(session.scalars(stmt))
