"""The store on SQLite and PostgreSQL: schema, instants, uniqueness, JSON, journeys, reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import Database
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, StatementError

from channels.base import OutboundMessage
from journeys.validate import parse_journey
from store.db import transaction
from store.journeys import live_journeys, publish, spec_of
from store.models import Base, Coupon, Enrollment, Event, JourneyVersion, Message, User
from store.outbox import SqlOutboxSink, list_outbox
from store.reports import StepOutcome, journey_report, user_timeline
from store.upsert import insert_ignore, insert_new, insert_returning_many
from workflows.ids import journey_workflow_id

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def user(user_id: str, *, at: datetime = T0, **fields: Any) -> User:
    values: dict[str, Any] = {"traits": {}, "tags": []} | fields
    return User(id=user_id, created_at=at, updated_at=at, **values)


def event(
    message_id: str, *, user_id: str = "u1", name: str | None = "user_signed_up", **fields: Any
) -> Event:
    values: dict[str, Any] = {
        "type": "track",
        "properties": {},
        "context": {},
        "timestamp": T0,
        "received_at": T0,
    } | fields
    return Event(message_id=message_id, user_id=user_id, event=name, **values)


def enrollment(
    user_id: str, *, journey_id: str = "new_user_coupon", entry_number: int = 1, **fields: Any
) -> Enrollment:
    values: dict[str, Any] = {
        "journey_version": 1,
        "entry_key": "",
        "group": "treatment",
        "workflow_id": journey_workflow_id(journey_id, user_id, entry=entry_number),
        "entered_at": T0,
    } | fields
    return Enrollment(journey_id=journey_id, user_id=user_id, entry_number=entry_number, **values)


def message(key: str, *, user_id: str = "u1", **fields: Any) -> Message:
    values: dict[str, Any] = {
        "journey_id": "new_user_coupon",
        "step_id": "welcome_sms",
        "channel": "sms",
        "template": "new_user_welcome_sms",
        "status": "sent",
        "created_at": T0,
    } | fields
    return Message(idempotency_key=key, user_id=user_id, **values)


def count(db: Database, model: type[Base]) -> int:
    with db.factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


# --- schema -----------------------------------------------------------------------------


def test_migrated_schema_matches_the_models(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []

    # The comparison does see the database: a missing index is reported.
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_outbox_created_at"))
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    assert [(d[0], d[1].name) for d in diffs] == [("add_index", "ix_outbox_created_at")]


# --- instants ----------------------------------------------------------------------------


def test_aware_datetime_in_another_zone_reads_back_as_the_same_instant_in_utc(
    db: Database,
) -> None:
    local = datetime(2026, 3, 1, 10, 30, 15, 123456, tzinfo=SHANGHAI)  # 02:30:15 UTC
    with transaction(db.factory) as session:
        session.add(user("u1", at=local))

    with db.factory() as session:
        stored = session.scalar(select(User.created_at).where(User.id == "u1"))
    assert stored == local
    assert stored is not None and stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)
    assert (stored.hour, stored.minute, stored.microsecond) == (2, 30, 123456)


def test_instants_in_different_zones_sort_and_compare_by_instant(db: Database) -> None:
    # 09:00 in Shanghai is 01:00 UTC: earlier than 03:00 UTC despite the larger wall clock.
    with transaction(db.factory) as session:
        session.add(event("late", timestamp=datetime(2026, 3, 1, 3, 0, tzinfo=UTC)))
        session.add(event("early", timestamp=datetime(2026, 3, 1, 9, 0, tzinfo=SHANGHAI)))

    with db.factory() as session:
        ordered = session.scalars(select(Event.message_id).order_by(Event.timestamp)).all()
        cutoff = datetime(2026, 3, 1, 10, 0, tzinfo=SHANGHAI)  # 02:00 UTC
        before = session.scalars(select(Event.message_id).where(Event.timestamp < cutoff)).all()
    assert ordered == ["early", "late"]
    assert before == ["early"]


def test_naive_datetime_is_refused_with_a_clear_error(db: Database) -> None:
    with pytest.raises(StatementError) as caught, transaction(db.factory) as session:
        session.add(user("u1", at=datetime(2026, 3, 1, 10, 0)))
        session.flush()
    assert isinstance(caught.value.orig, ValueError)
    assert "naive datetime" in str(caught.value)
    assert count(db, User) == 0


def test_sqlite_stores_instants_as_the_dialects_own_text() -> None:
    # The column writes its text itself on SQLite; comparisons and ORDER BY in SQL compare
    # that text, so it must be the dialect's format to the character (rows written before
    # and after sort together).
    from sqlalchemy.dialects import sqlite

    from store.types import UTCDateTime

    dialect = sqlite.dialect()
    ours = UTCDateTime().bind_processor(dialect)
    theirs = sqlite.DATETIME().bind_processor(dialect)
    cases = [
        datetime(2026, 3, 1, 10, 30, 15, 123456, tzinfo=UTC),
        datetime(2026, 3, 1, 10, 30, tzinfo=UTC),  # no microseconds: still six digits
        datetime(2026, 3, 1, 9, 0, tzinfo=SHANGHAI),  # 01:00 UTC
        datetime(1, 1, 1, 8, 0, 0, 7, tzinfo=SHANGHAI) + timedelta(hours=1),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    assert ours is not None and theirs is not None
    for value in cases:
        assert ours(value) == theirs(value.astimezone(UTC).replace(tzinfo=None)), value
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive datetime"):
        ours(datetime(2026, 3, 1, 10, 0))


# --- uniqueness --------------------------------------------------------------------------


def event_values(message_id: str, name: str) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "type": "track",
        "user_id": "u1",
        "event": name,
        "properties": {},
        "context": {},
        "timestamp": T0,
        "received_at": T0,
    }


def test_events_are_stored_once_by_message_id(db: Database) -> None:
    with transaction(db.factory) as session:
        session.add(event("m-1"))
    with pytest.raises(IntegrityError), transaction(db.factory) as session:
        session.add(event("m-1", name="order_completed"))

    with transaction(db.factory) as session:
        insert_ignore(session, Event, values=event_values("m-1", "order_completed"))
        insert_ignore(session, Event, values=event_values("m-2", "order_completed"))

    with db.factory() as session:
        rows = session.execute(select(Event.message_id, Event.event).order_by(Event.id)).all()
    assert [tuple(r) for r in rows] == [("m-1", "user_signed_up"), ("m-2", "order_completed")]


def test_insert_ignore_says_whether_it_inserted(db: Database) -> None:
    with transaction(db.factory) as session:
        assert insert_ignore(session, Event, values=event_values("m-1", "user_signed_up"))
    with transaction(db.factory) as session:
        assert not insert_ignore(session, Event, values=event_values("m-1", "order_completed"))
    assert count(db, Event) == 1


def test_insert_new_gives_the_row_it_wrote_and_none_on_a_conflict(db: Database) -> None:
    with transaction(db.factory) as session:
        row = insert_new(session, Event, values=event_values("m-1", "user_signed_up"))
        assert row is not None and row.id > 0 and row.event == "user_signed_up"
        assert row.timestamp == T0  # as the column type reads it back
    with transaction(db.factory) as session:
        assert insert_new(session, Event, values=event_values("m-1", "order_completed")) is None
    assert count(db, Event) == 1


def test_insert_returning_many_gives_only_the_rows_it_wrote(db: Database) -> None:
    with transaction(db.factory) as session:
        insert_ignore(session, Event, values=event_values("m-2", "order_completed"))
    rows = [event_values(f"m-{i}", "user_signed_up") for i in (1, 2, 3)]
    with transaction(db.factory) as session:
        written = insert_returning_many(
            session, Event, rows=rows, columns=(Event.id, Event.message_id)
        )
    assert sorted(r.message_id for r in written) == ["m-1", "m-3"]
    assert count(db, Event) == 3


def test_enrollments_are_unique_per_journey_user_key_and_entry_number(db: Database) -> None:
    with transaction(db.factory) as session:
        session.add(enrollment("u1"))
    with pytest.raises(IntegrityError), transaction(db.factory) as session:
        session.add(enrollment("u1", workflow_id="another-run"))

    # Any one part differing makes it a different enrollment.
    with transaction(db.factory) as session:
        session.add(enrollment("u1", entry_number=2))
        session.add(enrollment("u1", entry_key="order-42", workflow_id="w-key"))
        session.add(enrollment("u2"))
        session.add(enrollment("u1", journey_id="win_back"))
    assert count(db, Enrollment) == 5


def test_ledger_is_unique_by_idempotency_key(db: Database) -> None:
    with transaction(db.factory) as session:
        session.add(message("run-1/welcome_sms/1"))
    with pytest.raises(IntegrityError), transaction(db.factory) as session:
        session.add(message("run-1/welcome_sms/1", status="pending"))
    with transaction(db.factory) as session:
        session.add(message("run-1/welcome_sms/2"))

    with db.factory() as session:
        rows = session.execute(select(Message.idempotency_key, Message.status)).all()
    assert sorted(tuple(r) for r in rows) == [
        ("run-1/welcome_sms/1", "sent"),
        ("run-1/welcome_sms/2", "sent"),
    ]


# --- JSON ---------------------------------------------------------------------------------


def test_json_columns_round_trip_nested_unicode_and_numbers(db: Database) -> None:
    traits = {
        "name": "李雷",
        "address": {"city": "上海", "district": "浦东新区", "geo": [31.2304, 121.4737]},
        "orders": 3,
        "lifetime_fen": 9007199254740993,  # past a double's exact range
        "vip": False,
        "referrer": None,
        "emoji": "🎁",
    }
    properties = {
        "order": {"items": [{"sku": "奶粉-900g", "qty": 2, "price": 199.5}], "total_fen": 39900},
        "coupon": {"code": "NEW20", "discount": 20},
        "ratio": 0.1,
    }
    with transaction(db.factory) as session:
        session.add(user("u1", traits=traits, tags=["母婴人群", "新客"]))
        session.add(event("m-1", properties=properties))

    with db.factory() as session:
        stored_user = session.get(User, "u1")
        stored_event = session.scalar(select(Event).where(Event.message_id == "m-1"))
    assert stored_user is not None and stored_event is not None
    assert stored_user.traits == traits
    assert stored_user.tags == ["母婴人群", "新客"]
    assert stored_event.properties == properties
    assert isinstance(stored_event.properties["order"]["total_fen"], int)


# --- published journeys -----------------------------------------------------------------


JOURNEY = """\
id: new_user_coupon
name: 7-day new-user coupon
trigger: {event: user_signed_up}
goal: {event: order_placed, within: 7d}
holdout: 10
steps:
  - {id: welcome_coupon, type: issue_coupon, amount: 20, min_spend: 50, valid_for: 7d}
  - {id: welcome_sms, type: send, channel: sms, template: new_user_welcome_sms}
  - {id: wait_day2, type: wait, duration: 2d}
  - {id: day2_push, type: send, channel: push, template: new_user_reminder_push}
"""


def test_publish_versions_a_journey_only_when_its_spec_changes(db: Database) -> None:
    source = JOURNEY
    journey = parse_journey(source)

    with transaction(db.factory) as session:
        first = publish(session, journey=journey, source=source, now=T0)
    assert (first.journey_id, first.version, first.status) == ("new_user_coupon", 1, "published")

    # The same spec again (even with a comment changed) is not a new version.
    with transaction(db.factory) as session:
        again = publish(
            session,
            journey=parse_journey(source + "\n# tweaked\n"),
            source=source + "\n# tweaked\n",
            now=T0 + timedelta(hours=1),
        )
    assert (again.id, again.version) == (first.id, 1)
    assert count(db, JourneyVersion) == 1

    changed_source = source.replace("holdout: 10", "holdout: 20")
    assert changed_source != source
    with transaction(db.factory) as session:
        second = publish(
            session,
            journey=parse_journey(changed_source),
            source=changed_source,
            now=T0 + timedelta(days=1),
        )
    assert second.version == 2

    with db.factory() as session:
        rows = session.execute(
            select(JourneyVersion.version, JourneyVersion.status, JourneyVersion.published_at)
            .where(JourneyVersion.journey_id == "new_user_coupon")
            .order_by(JourneyVersion.version)
        ).all()
    assert [tuple(r) for r in rows] == [
        (1, "archived", T0),
        (2, "published", T0 + timedelta(days=1)),
    ]
    with db.factory() as session:
        (live,) = live_journeys(session)
    assert spec_of(live) == parse_journey(changed_source)  # the stored spec is the journey
    assert live.source == changed_source


def test_live_journeys_are_the_latest_version_of_each(db: Database) -> None:
    source = JOURNEY
    other = source.replace("id: new_user_coupon", "id: first_order_thanks")
    with transaction(db.factory) as session:
        publish(session, journey=parse_journey(source), source=source, now=T0)
        publish(session, journey=parse_journey(other), source=other, now=T0)
    for holdout in (20, 30):
        changed = source.replace("holdout: 10", f"holdout: {holdout}")
        with transaction(db.factory) as session:
            publish(session, journey=parse_journey(changed), source=changed, now=T0)

    with db.factory() as session:
        live = [
            (row.journey_id, row.version, row.spec["holdout"]) for row in live_journeys(session)
        ]
    assert live == [("first_order_thanks", 1, 10), ("new_user_coupon", 3, 30)]


# --- outbox ------------------------------------------------------------------------------


def test_outbox_records_a_retried_send_once(db: Database) -> None:
    sink = SqlOutboxSink(db.factory, clock=lambda: T0)
    sms = OutboundMessage(
        key="run-1/welcome_sms/1", channel="sms", to="+8613800138000", body="满50减20 回T退订"
    )

    first = sink.record(sms)
    retried = sink.record(OutboundMessage(**{**sms.__dict__, "body": "a different body"}))
    other = sink.record(OutboundMessage(**{**sms.__dict__, "key": "run-2/welcome_sms/1"}))

    assert retried == first
    assert other != first
    with db.factory() as session:
        rows = list_outbox(session)
    assert [(m.id, m.message_key, m.body) for m in rows] == [
        (other, "run-2/welcome_sms/1", "满50减20 回T退订"),
        (first, "run-1/welcome_sms/1", "满50减20 回T退订"),
    ]
    assert rows[0].created_at == T0


# --- reports -----------------------------------------------------------------------------


def test_user_timeline_is_ordered_by_time_and_shows_skips_with_reasons(db: Database) -> None:
    signup = T0
    with transaction(db.factory) as session:
        session.add(user("u1"))
        session.flush()
        # Written out of order, in two zones: the timeline sorts by instant.
        session.add(
            message(
                "run/day2_push/1",
                step_id="day2_push",
                channel="push",
                template="new_user_reminder_push",
                status="skipped",
                reason="no_push_token",
                created_at=(signup + timedelta(days=2)).astimezone(SHANGHAI),
            )
        )
        session.add(
            message(
                "run/welcome_sms/1",
                created_at=signup + timedelta(seconds=2),
                sent_at=signup + timedelta(seconds=3),
            )
        )
        session.add(
            event(
                "m-order",
                name="order_completed",
                timestamp=(signup + timedelta(days=3)).astimezone(SHANGHAI),
            )
        )
        session.add(event("m-identify", type="identify", name=None, timestamp=signup))
        session.add(event("m-signup", timestamp=signup))
        session.add(
            enrollment(
                "u1",
                entered_at=signup + timedelta(seconds=1),
                exited_at=signup + timedelta(days=3, seconds=1),
                exit_reason="converted",
                converted_at=signup + timedelta(days=3, seconds=1),
            )
        )
        session.add(
            Coupon(
                issue_key="run/welcome_coupon",
                code="NEW20ABC",
                user_id="u1",
                journey_id="new_user_coupon",
                amount_fen=2000,
                min_spend_fen=5000,
                issued_at=signup + timedelta(seconds=1),
                expires_at=signup + timedelta(days=7),
            )
        )
        # Someone else's history is not shown.
        session.add(event("m-other", user_id="u2", timestamp=signup))
        session.add(message("run-u2/welcome_sms/1", user_id="u2"))

    with db.factory() as session:
        entries = user_timeline(session, user_id="u1")

    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert [(e.kind, e.text) for e in entries] == [
        ("event", "user_signed_up"),
        ("enrolled", "entered new_user_coupon v1 (treatment)"),
        ("coupon", "coupon NEW20ABC issued: ¥20 off ¥50+, expires 2026-03-08 02:00 UTC"),
        ("message", "sms welcome_sms (new_user_welcome_sms): sent"),
        ("message", "push day2_push (new_user_reminder_push): skipped — no_push_token"),
        ("event", "order_completed"),
        ("exit", "exited new_user_coupon: converted"),
    ]
    assert entries[3].at == signup + timedelta(seconds=3)  # a sent message shows when it went
    assert entries[4].at == signup + timedelta(days=2)


def test_journey_report_counts_entries_and_conversions_by_group(db: Database) -> None:
    done = T0 + timedelta(days=1)
    with transaction(db.factory) as session:
        for i in range(3):
            session.add(
                enrollment(
                    f"t{i}",
                    exited_at=done if i < 2 else None,
                    exit_reason="converted" if i < 2 else None,
                    converted_at=done if i < 2 else None,
                )
            )
        session.add(
            enrollment(
                "h0", group="holdout", exited_at=done, exit_reason="converted", converted_at=done
            )
        )
        session.add(enrollment("h1", group="holdout", exited_at=done, exit_reason="completed"))
        session.add(enrollment("x0", journey_id="win_back", converted_at=done))
        session.add(message("t0/welcome_sms", user_id="t0"))
        session.add(message("t1/welcome_sms", user_id="t1"))
        session.add(message("t2/welcome_sms", user_id="t2", status="skipped", reason="no_consent"))
        session.add(message("x0/win_back_sms", user_id="x0", journey_id="win_back"))

    with db.factory() as session:
        report = journey_report(session, journey_id="new_user_coupon")

    assert report.entered == {"treatment": 3, "holdout": 2}
    assert report.converted == {"treatment": 2, "holdout": 1}
    assert report.rate("treatment") == pytest.approx(2 / 3)
    assert report.rate("holdout") == pytest.approx(1 / 2)
    assert report.lift.absolute == pytest.approx(2 / 3 - 1 / 2)
    assert report.exits == {"converted": 3, "completed": 1, "running": 1}
    assert report.steps == [
        StepOutcome("welcome_sms", "sms", sent=2, skipped={"no_consent": 1}),
    ]


def test_journey_report_of_a_journey_nobody_entered_is_empty(db: Database) -> None:
    with db.factory() as session:
        report = journey_report(session, journey_id="new_user_coupon")
    assert sum(report.entered.values()) == 0
    assert report.rate("treatment") == 0.0
    assert report.lift.absolute is None
