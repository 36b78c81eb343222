"""``lifecycle users find`` and what ``lifecycle users timeline`` says about events and held
sends, run in-process against a SQLite file."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from test_cli import assert_one_line_error, database_url, run  # noqa: F401

from cli import main
from store.db import make_engine, make_session_factory, transaction
from store.models import Event, Message, User

AT = datetime(2026, 3, 1, 13, 30, tzinfo=UTC)  # 21:30 in Shanghai: quiet hours
pytestmark = pytest.mark.usefixtures("database_url")


def seed(*rows: object) -> None:
    assert main(["migrate"]) == 0
    engine = make_engine(os.environ["LIFECYCLE_DATABASE_URL"])
    with transaction(make_session_factory(engine)) as session:
        session.add_all(rows)
    engine.dispose()


def user(user_id: str, email: str, phone: str, timezone: str | None = "Asia/Shanghai") -> User:
    return User(
        id=user_id,
        email=email,
        phone=phone,
        timezone=timezone,
        traits={},
        tags=[],
        created_at=AT - timedelta(days=2),
        last_seen_at=AT,
        updated_at=AT,
    )


def event(user_id: str, name: str, at: datetime, **properties: object) -> Event:
    return Event(
        message_id=f"{user_id}-{name}-{at.isoformat()}",
        type="track",
        user_id=user_id,
        event=name,
        properties=properties,
        context={},
        timestamp=at,
        received_at=at,
    )


def test_find_a_user_by_email_or_phone_as_typed(capsys: pytest.CaptureFixture[str]) -> None:
    seed(
        user("alice-1", "Alice@Example.com", "+8613900139000"),
        user("bob-2", "bob@example.com", "+8613700137000"),
    )
    capsys.readouterr()
    expected = (
        "alice-1  email Alice@Example.com  phone +8613900139000  "
        "first seen 2026-02-27 13:30 UTC  last seen 2026-03-01 13:30 UTC"
    )
    for typed in ("alice-1", "alice@example.com", "+86 139-0013-9000", "139 0013 9000"):
        code, out, err = run(capsys, "users", "find", typed)
        assert (code, err) == (0, ""), typed
        assert out.splitlines() == [expected], typed

    code, out, err = run(capsys, "users", "find", "+86 188 0000 0000")
    assert (code, out) == (1, "")
    assert assert_one_line_error(err) == (
        "lifecycle: no user has the id, email or phone '+86 188 0000 0000'"
    )


def test_users_find_has_help_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["users", "find", "--help"])
    assert exited.value.code == 0
    assert "lifecycle users find alice@example.com" in capsys.readouterr().out


def test_the_timeline_shows_event_properties_when_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    properties = {"product_id": "sku-42", "price": 99.5, "title": "纸尿裤"}
    seed(
        user("u1", "u1@example.com", "+8613800138000"),
        event("u1", "product_viewed", AT, **properties),
    )
    capsys.readouterr()
    code, out, _ = run(capsys, "users", "timeline", "u1")
    assert (code, out.splitlines()) == (0, ["2026-03-01 13:30:00 UTC  event     product_viewed"])

    code, out, _ = run(capsys, "users", "timeline", "u1", "--properties")
    lines = out.splitlines()
    assert lines[0] == "2026-03-01 13:30:00 UTC  event     product_viewed"
    assert lines[1].startswith(" " * 37)
    assert json.loads(lines[1]) == properties
    assert "纸尿裤" in lines[1]  # as written, not escaped


def test_a_held_send_says_why_and_until_when(capsys: pytest.CaptureFixture[str]) -> None:
    morning = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    seed(
        user("u1", "u1@example.com", "+8613800138000"),
        Message(
            idempotency_key="run-1/welcome_sms/0",
            journey_id="new_user_coupon",
            step_id="welcome_sms",
            user_id="u1",
            channel="sms",
            template="new_user_welcome_sms",
            status="pending",
            reason="quiet_hours",
            created_at=AT,
            deferred_until=morning,
        ),
    )
    capsys.readouterr()
    code, out, _ = run(capsys, "users", "timeline", "u1")
    assert code == 0
    assert out.splitlines() == [
        "2026-03-01 13:30:00 UTC  message   sms welcome_sms (new_user_welcome_sms): deferred — "
        "quiet hours; will be tried again 2026-03-02 08:00 Asia/Shanghai (2026-03-02 00:00 UTC)"
    ]
