"""Twilio status reports held for a sid the ledger never learns do not pile up: after a week
the worker deletes them, and nothing else (claimed reports, inbound STOP evidence, other
providers' events, reports still young enough to be claimed)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from store.db import transaction
from store.models import Message, ProviderEvent
from store.webhooks import hold_status, record_provider_event
from support import assert_eventually_async
from worker import purge_held_statuses_forever

NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def seed(factory) -> None:
    with transaction(factory) as session:
        message = Message(
            idempotency_key="run/welcome_sms/1",
            user_id="u1",
            channel="sms",
            template="new_user_welcome_sms",
            status="sent",
            provider="twilio",
            provider_message_id="SMours",
            created_at=NOW - 2 * WEEK,
        )
        session.add(message)
        session.flush()
        for sid, age in (("SMstranger", WEEK + timedelta(hours=1)), ("SMyoung", WEEK / 2)):
            hold_status(
                session,
                provider="twilio",
                provider_message_id=sid,
                provider_event_id=f"{sid}:delivered",
                status="delivered",
                received_at=NOW - age,
            )
        old = NOW - 2 * WEEK
        record_provider_event(
            session,
            provider="twilio",
            provider_event_id="SMours:delivered",
            kind="delivered",
            message_id=message.id,
            received_at=old,
        )
        record_provider_event(
            session,
            provider="twilio",
            provider_event_id="inbound:SMin",
            kind="stop",
            received_at=old,
        )
        record_provider_event(
            session, provider="sendgrid", provider_event_id="sg-1", kind="open", received_at=old
        )


def event_ids(factory) -> list[str]:
    with factory() as session:
        return sorted(session.scalars(select(ProviderEvent.provider_event_id)))


async def test_the_worker_purges_only_reports_held_over_a_week(db):
    seed(db.factory)
    purging = asyncio.create_task(
        purge_held_statuses_forever(db.factory, every=3600, clock=lambda: NOW)
    )
    try:
        await assert_eventually_async(
            lambda: "SMstranger:delivered" not in event_ids(db.factory),
            timeout=5,
            message="the stranger's held report purged",
        )
    finally:
        purging.cancel()

    assert event_ids(db.factory) == [
        "SMours:delivered",  # claimed by its message
        "SMyoung:delivered",  # still held: its send may yet store the sid
        "inbound:SMin",  # a STOP: consent evidence
        "sg-1",  # another provider's
    ]
