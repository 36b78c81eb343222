"""The Messages page says why a held send waits and when it is tried again."""

from __future__ import annotations

from datetime import timedelta

from console_support import NOW, message_row
from sqlalchemy import select
from test_data_pages import rows

from store.db import transaction
from store.models import Message


def test_a_held_send_shows_its_reason_and_next_try(db, admin):
    http, _ = admin
    held = message_row("u-1", "welcome_sms", "pending", reason="quiet_hours")
    held.deferred_until = NOW + timedelta(hours=9)
    capped = message_row("u-2", "day2_push", "pending", reason="frequency_cap", channel="push")
    capped.deferred_until = NOW + timedelta(days=1)
    skipped = message_row("u-3", "welcome_sms", "skipped", reason="unsubscribed")
    with transaction(db.factory) as session:
        session.add_all([held, capped, skipped])
    with db.factory() as session:
        by_user = {user: id_ for user, id_ in session.execute(select(Message.user_id, Message.id))}
    ids = [str(by_user[u]) for u in ("u-1", "u-2", "u-3")]

    found = rows(http.get("/console/messages").text, "message")
    until = f"{(NOW + timedelta(hours=9)):%Y-%m-%d %H:%M}"
    assert f"pending held: quiet hours; tried again {until}" in found[ids[0]]
    assert "pending held: frequency cap reached; tried again" in found[ids[1]]
    assert "skipped unsubscribed" in found[ids[2]]
    assert "held" not in found[ids[2]]


def test_a_test_send_is_not_shown_as_an_erased_user(db, admin):
    http, _ = admin
    row = message_row("ignored", "test_send", "sent")
    row.user_id, row.journey_id, row.topic = None, None, "test"
    with transaction(db.factory) as session:
        session.add(row)
    page = http.get("/console/messages").text
    (cells,) = rows(page, "message").values()
    assert "test send" in cells and "erased" not in cells
