"""Operator endpoints over HTTP: pause-all / resume-all, and forgetting a user."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from api.app import create_app
from config import Settings
from store.control import sends_paused
from store.db import transaction
from store.models import Enrollment, Event, Message, OutboxMessage, PushToken, User
from triggers.ingest import NullRouter
from workflows.ids import journey_workflow_id

AT = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)


class RecordingRuns:
    def __init__(self) -> None:
        self.ended: list[str] = []

    async def route(self, event_ids: list[int]) -> None:
        pass

    async def end_runs(self, workflow_ids: list[str], *, reason: str) -> None:
        self.ended += workflow_ids


def client(db, router=None) -> TestClient:
    settings = Settings(
        environment="test", write_key="wk", admin_token="at", unsubscribe_secret=SecretStr("us")
    )
    app = create_app(settings, session_factory=db.factory, router=router or NullRouter(db.factory))
    return TestClient(app)


def test_pause_all_needs_the_admin_token_and_flips_the_switch(db):
    http = client(db)
    assert http.post("/v1/admin/pause-all").status_code == 401
    assert (
        http.post("/v1/admin/pause-all", headers={"Authorization": "Bearer wk"}).status_code == 401
    )
    assert http.post("/v1/admin/pause-all", headers={"Authorization": "Bearer at"}).json() == {
        "sends_paused": True
    }
    with db.factory() as session:
        assert sends_paused(session)
    http.post("/v1/admin/resume-all", headers={"Authorization": "Bearer at"})
    with db.factory() as session:
        assert not sends_paused(session)


def seed_user(db) -> None:
    with transaction(db.factory) as session:
        session.add(
            User(
                id="gone",
                email="gone@example.com",
                phone="+8613800000001",
                traits={"name": "王"},
                tags=["母婴人群"],
                created_at=AT,
                updated_at=AT,
            )
        )
        session.flush()
        session.add(PushToken(user_id="gone", token="tok-gone", created_at=AT))
        session.add(
            Event(
                message_id="e1",
                type="track",
                user_id="gone",
                event="order_placed",
                properties={"address": "上海市…"},
                context={"ip": "10.0.0.1"},
                timestamp=AT,
                received_at=AT,
            )
        )
        session.add(
            Enrollment(
                journey_id="new_user_coupon",
                journey_version=1,
                user_id="gone",
                group="treatment",
                workflow_id=journey_workflow_id("new_user_coupon", "gone"),
                entered_at=AT,
            )
        )
        session.add(
            Message(
                idempotency_key="run/welcome_sms/1",
                user_id="gone",
                channel="sms",
                template="new_user_welcome_sms",
                status="sent",
                created_at=AT,
                sent_at=AT,
                journey_id="new_user_coupon",
                step_id="welcome_sms",
            )
        )
        session.add(
            OutboxMessage(
                message_key="run/welcome_sms/1",
                channel="sms",
                recipient="+8613800000001",
                body="王，欢迎…",
                created_at=AT,
            )
        )


def test_forgetting_a_user_keeps_only_anonymous_counts(db):
    seed_user(db)
    runs = RecordingRuns()
    http = client(db, runs)
    assert http.delete("/v1/users/gone").status_code == 401
    resp = http.delete("/v1/users/gone", headers={"Authorization": "Bearer at"})
    assert resp.json() == {"erased": True, "runs_ended": 1}
    assert runs.ended == [journey_workflow_id("new_user_coupon", "gone")]

    with db.factory() as session:
        assert session.get(User, "gone") is None
        assert session.scalars(select(PushToken)).all() == []
        (event,) = session.scalars(select(Event)).all()
        assert (event.event, event.properties, event.context) == ("order_placed", {}, {})
        assert event.user_id != "gone"
        (message,) = session.scalars(select(Message)).all()
        assert (message.user_id, message.status, message.step_id) == (None, "sent", "welcome_sms")
        (sent,) = session.scalars(select(OutboxMessage)).all()
        assert (sent.recipient, sent.body) == ("erased", "")
        (enrollment,) = session.scalars(select(Enrollment)).all()
        assert enrollment.exit_reason == "erased" and enrollment.user_id.startswith("erased:")


def test_erasure_needs_the_admin_token_not_the_write_key(db):
    # Write keys ship inside apps and browsers: whoever holds one must not erase users.
    seed_user(db)
    http = client(db)
    for header in ("Basic d2s6", "Bearer wk", "Bearer"):  # d2s6: "wk:" as HTTP Basic
        answer = http.delete("/v1/users/gone", headers={"Authorization": header})
        assert answer.status_code == 401, header
    assert http.delete("/v1/users/gone", auth=("wk", "")).status_code == 401
    with db.factory() as session:
        assert session.get(User, "gone") is not None
    answer = http.delete("/v1/users/gone", headers={"Authorization": "Bearer at"})
    assert answer.json() == {"erased": True, "runs_ended": 0}


def test_an_id_with_slashes_is_erased_written_plain_or_percent_encoded(db):
    http = client(db)
    admin = {"Authorization": "Bearer at"}
    for user_id, path in (
        ("tenant/7/u1", "/v1/users/tenant/7/u1"),
        ("tenant/7/u2", "/v1/users/tenant%2F7%2Fu2"),
    ):
        with transaction(db.factory) as session:
            session.add(User(id=user_id, email="x@example.com", created_at=AT, updated_at=AT))
        answer = http.delete(path, headers=admin)
        assert answer.status_code == 200, (path, answer.text)
        with db.factory() as session:
            assert session.get(User, user_id) is None, path
