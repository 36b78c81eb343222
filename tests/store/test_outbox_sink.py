"""The outbox sink records a message once per ledger key, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from conftest import Database
from sqlalchemy import select

from store.models import OutboxMessage
from store.outbox import SqlOutboxSink


@dataclass(frozen=True)
class Record:
    key: str
    body: str
    channel: str = "sms"
    to: str = "+8613800138000"
    subject: str | None = None
    title: str | None = None
    html: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def test_a_retried_send_records_nothing_new_and_gets_the_same_row(db: Database) -> None:
    sink = SqlOutboxSink(db.factory, clock=lambda: datetime(2026, 6, 18, tzinfo=UTC))
    first = sink.record(Record("welcome:1", "满50减20 coupon inside", data={"k": "名字"}))
    again = sink.record(Record("welcome:1", "a different body on the retry"))
    other = sink.record(Record("welcome:2", "second user"))
    assert again == first and other != first
    with db.factory() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [(r.id, r.message_key, r.body) for r in rows] == [
        (first, "welcome:1", "满50减20 coupon inside"),
        (other, "welcome:2", "second user"),
    ]
    assert rows[0].data == {"k": "名字"}
    assert rows[0].created_at == datetime(2026, 6, 18, tzinfo=UTC)
