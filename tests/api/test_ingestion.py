"""The ingestion API as a Segment client sees it, on SQLite and on PostgreSQL."""

from __future__ import annotations

import gzip
import json
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from config import Settings
from store.db import SessionFactory, make_engine, make_session_factory, transaction
from store.migrate import upgrade
from store.models import Base, Consent, Event, PushToken, RejectedEvent, User
from triggers.ingest import EventRouter, Ingestor, NullRouter, mark_routed
from triggers.segment import parse_call

PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
WRITE_KEY = "wk-test-123"
AUTH = (WRITE_KEY, "")
NOW = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


# --- databases -------------------------------------------------------------------------------


def _postgres_reachable() -> bool:
    engine = make_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SessionFactory]:
    """A migrated database for this module: a SQLite file or a private PostgreSQL schema."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("api") / "lifecycle.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        yield make_session_factory(engine)
        engine.dispose()
        return
    if not _postgres_reachable():
        if os.environ.get("LIFECYCLE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but unreachable at {PG_URL}")
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432")
    schema = f"t_api_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        yield make_session_factory(engine)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def factory(database: SessionFactory) -> SessionFactory:
    """The module's database, emptied before each test."""
    with transaction(database) as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())
    return database


# --- fakes -----------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class RecordingRouter:
    """Records the ids it is given and marks them routed, as the real router does."""

    def __init__(self, factory: SessionFactory, clock: Clock) -> None:
        self.factory = factory
        self.clock = clock
        self.calls: list[list[int]] = []
        self.fail = False

    async def route(self, event_ids: list[int]) -> None:
        if self.fail:
            raise RuntimeError("temporal unavailable")
        self.calls.append(list(event_ids))
        with transaction(self.factory) as session:
            mark_routed(session, event_ids=event_ids, at=self.clock())

    @property
    def routed(self) -> list[int]:
        return [i for call in self.calls for i in call]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def router(factory: SessionFactory, clock: Clock) -> RecordingRouter:
    return RecordingRouter(factory, clock)


def make_client(factory: SessionFactory, router: EventRouter, clock: Clock) -> TestClient:
    settings = Settings(write_key=WRITE_KEY, environment="development")
    return TestClient(create_app(settings, session_factory=factory, router=router, clock=clock))


@pytest.fixture
def client(factory: SessionFactory, router: RecordingRouter, clock: Clock) -> TestClient:
    return make_client(factory, router, clock)


# --- helpers ---------------------------------------------------------------------------------


def events(factory: SessionFactory) -> list[Event]:
    with factory() as session:
        return list(session.scalars(select(Event).order_by(Event.id)))


def user(factory: SessionFactory, user_id: str) -> User | None:
    with factory() as session:
        return session.get(User, user_id)


def count(factory: SessionFactory, model: type[Base]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def nothing_written(factory: SessionFactory) -> bool:
    return count(factory, Event) == 0 and count(factory, User) == 0


def post(client: TestClient, path: str, body: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("auth", AUTH)
    return client.post(path, content=json.dumps(body).encode(), **kwargs)


def track(**fields: Any) -> dict[str, Any]:
    return {"userId": "u1", "event": "Order Completed", **fields}


# --- accepted calls --------------------------------------------------------------------------


def test_healthz_needs_no_key(client: TestClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


def test_track_is_stored_and_routed_once(
    client: TestClient, factory: SessionFactory, router: RecordingRouter
) -> None:
    resp = post(
        client,
        "/v1/track",
        track(
            messageId="m-1",
            properties={"order_id": "o1", "total_fen": 5000},
            context={"library": {"name": "analytics-python", "version": "2.3.2"}},
            integrations={"All": True, "Mixpanel": False},
            somethingNew={"ignored": True},
        ),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"success": True}
    [event] = events(factory)
    assert (event.message_id, event.type, event.user_id) == ("m-1", "track", "u1")
    assert event.event == "Order Completed"
    assert event.properties == {"order_id": "o1", "total_fen": 5000}
    assert event.context["library"]["name"] == "analytics-python"
    assert event.timestamp == NOW and event.received_at == NOW
    assert event.routed_at == NOW
    assert router.calls == [[event.id]]


def test_message_id_is_generated_when_absent(client: TestClient, factory: SessionFactory) -> None:
    assert post(client, "/v1/track", track()).status_code == 200
    assert post(client, "/v1/track", track()).status_code == 200
    ids = [e.message_id for e in events(factory)]
    assert len(set(ids)) == 2 and all(ids)


def test_same_message_id_twice_stores_and_routes_once(
    client: TestClient, factory: SessionFactory, router: RecordingRouter
) -> None:
    for _ in range(2):
        assert post(client, "/v1/track", track(messageId="dup")).status_code == 200
    [event] = events(factory)
    assert router.routed == [event.id]


def test_duplicate_whose_routing_failed_is_routed_on_retry(
    client: TestClient, factory: SessionFactory, router: RecordingRouter
) -> None:
    router.fail = True
    resp = post(client, "/v1/track", track(messageId="retry-me"))
    assert resp.status_code == 503
    assert resp.json() == {"error": "stored but not routed; retry"}
    [event] = events(factory)
    assert event.routed_at is None

    router.fail = False
    assert post(client, "/v1/track", track(messageId="retry-me")).status_code == 200
    [event] = events(factory)
    assert router.routed == [event.id]
    assert event.routed_at is not None


def test_anonymous_track_is_stored_without_profile_or_routing(
    client: TestClient, factory: SessionFactory, router: RecordingRouter
) -> None:
    resp = post(client, "/v1/track", {"anonymousId": "anon-1", "event": "Product Viewed"})
    assert resp.status_code == 200
    [event] = events(factory)
    assert (event.user_id, event.anonymous_id) == (None, "anon-1")
    assert event.routed_at == NOW
    assert count(factory, User) == 0
    assert router.calls == []


def test_gzip_body_is_accepted(client: TestClient, factory: SessionFactory) -> None:
    body = gzip.compress(json.dumps(track(messageId="gz")).encode())
    resp = client.post("/v1/track", content=body, auth=AUTH, headers={"Content-Encoding": "gzip"})
    assert resp.status_code == 200, resp.text
    assert [e.message_id for e in events(factory)] == ["gz"]


def test_sent_at_corrects_device_clock_skew(client: TestClient, factory: SessionFactory) -> None:
    # The device clock is an hour fast: the event happened 5 minutes before it was sent.
    skew = timedelta(hours=1)
    device_event = NOW - timedelta(minutes=5) + skew
    device_sent = NOW + skew
    resp = post(
        client,
        "/v1/track",
        track(timestamp=device_event.isoformat(), sentAt=device_sent.isoformat()),
    )
    assert resp.status_code == 200
    [event] = events(factory)
    assert event.timestamp == NOW - timedelta(minutes=5)
    assert event.received_at == NOW


def test_naive_timestamp_is_utc(client: TestClient, factory: SessionFactory) -> None:
    assert post(client, "/v1/track", track(timestamp="2024-04-30T08:00:00")).status_code == 200
    [event] = events(factory)
    assert event.timestamp == datetime(2024, 4, 30, 8, 0, tzinfo=UTC)


def test_other_call_types_are_stored(
    client: TestClient, factory: SessionFactory, router: RecordingRouter
) -> None:
    for kind, body in [
        ("page", {"userId": "u1", "name": "Home"}),
        ("screen", {"userId": "u1", "name": "Cart"}),
        ("group", {"userId": "u1", "groupId": "g1", "traits": {"plan": "vip"}}),
        ("alias", {"userId": "u1", "previousId": "anon-1"}),
    ]:
        resp = post(client, f"/v1/{kind}", body)
        assert resp.status_code == 200, (kind, resp.text)
    stored = events(factory)
    assert [e.type for e in stored] == ["page", "screen", "group", "alias"]
    assert [e.event for e in stored[:2]] == ["Home", "Cart"]
    assert all(e.routed_at == NOW for e in stored)
    assert router.calls == []


# --- batch -----------------------------------------------------------------------------------


def test_batch_accepts_what_segment_libraries_send(
    client: TestClient, factory: SessionFactory, router: RecordingRouter
) -> None:
    sent_at = NOW + timedelta(minutes=10)  # device clock 10 minutes fast
    body = {
        "batch": [
            {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}},
            {
                "type": "track",
                "userId": "u1",
                "event": "Cart Viewed",
                "messageId": "t1",
                "timestamp": (sent_at - timedelta(seconds=30)).isoformat(),
                "context": {"page": {"path": "/cart"}, "library": {"version": "override"}},
            },
            {"type": "page", "anonymousId": "a1", "name": "Home"},
            {"type": "screen", "userId": "u1", "name": "Cart"},
            {"type": "group", "userId": "u1", "groupId": "g1"},
            {"type": "alias", "userId": "u1", "previousId": "a1"},
        ],
        "context": {"library": {"name": "analytics-node", "version": "1.0"}},
        "sentAt": sent_at.isoformat(),
        "writeKey": "ignored-in-body",
    }
    resp = post(client, "/v1/batch", body)
    assert resp.status_code == 200, resp.text
    stored = events(factory)
    assert [e.type for e in stored] == ["identify", "track", "page", "screen", "group", "alias"]
    tracked = stored[1]
    assert tracked.context == {
        "library": {"name": "analytics-node", "version": "override"},
        "page": {"path": "/cart"},
    }
    assert tracked.timestamp == NOW - timedelta(seconds=30)
    assert stored[0].context == {"library": {"name": "analytics-node", "version": "1.0"}}
    assert router.calls == [[tracked.id]]
    profile = user(factory, "u1")
    assert profile is not None and profile.email == "a@example.com"


def rejected(factory: SessionFactory) -> list[RejectedEvent]:
    with factory() as session:
        return list(session.scalars(select(RejectedEvent).order_by(RejectedEvent.id)))


def test_batch_with_one_bad_message_keeps_the_good_ones(
    client: TestClient, factory: SessionFactory, router: RecordingRouter
) -> None:
    body = {
        "batch": [
            {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}},
            track(type="track", messageId="good"),
            track(type="track", messageId="bad", properties=["not", "an", "object"]),
        ]
    }
    resp = post(client, "/v1/batch", body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["success"] is True
    [refused] = resp.json()["refused"]
    assert refused["index"] == 2
    assert refused["messageId"] == "bad"
    assert refused["field"] == "batch[2].properties"
    assert "batch[2].properties" in refused["reason"]
    assert [e.message_id for e in events(factory) if e.type == "track"] == ["good"]
    profile = user(factory, "u1")
    assert profile is not None and profile.email == "a@example.com"
    [row] = rejected(factory)
    assert (row.stage, row.source, row.message_id, row.field) == (
        "ingest",
        "/v1/batch",
        "bad",
        "batch[2].properties",
    )
    assert json.loads(row.raw)["properties"] == ["not", "an", "object"]
    assert len(router.routed) == 1


def test_twenty_good_events_survive_one_bad_one(
    client: TestClient, factory: SessionFactory
) -> None:
    good = [track(type="track", messageId=f"m{i}") for i in range(20)]
    bad = track(type="track", messageId="bad", timestamp="0001-01-01T00:00:00+01:00", userId=7)
    resp = post(client, "/v1/batch", {"batch": [*good[:10], bad, *good[10:]]})
    assert resp.status_code == 200
    assert [r["index"] for r in resp.json()["refused"]] == [10]
    assert sorted(e.message_id for e in events(factory)) == sorted(m["messageId"] for m in good)


def test_a_refused_item_retried_is_kept_once(client: TestClient, factory: SessionFactory) -> None:
    body = {"batch": [track(type="track", messageId="bad", event="")]}
    assert post(client, "/v1/batch", body).json()["refused"][0]["field"] == "batch[0].event"
    assert post(client, "/v1/batch", body).status_code == 200
    assert len(rejected(factory)) == 1


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "shout", "userId": "u1"}, "batch[1].type"),
        ({"userId": "u1", "event": "x"}, "batch[1].type"),
        ({"type": "track", "event": "x"}, "batch[1].userId"),
        ({"type": "track", "userId": 7, "event": "x"}, "batch[1].userId"),
        ({"type": "track", "userId": "u1"}, "batch[1].event"),
        ({"type": "identify", "userId": "u1", "traits": "vip"}, "batch[1].traits"),
        ({"type": "page", "userId": "u1", "context": []}, "batch[1].context"),
        (
            {"type": "track", "userId": "u1", "event": "x", "timestamp": "soon"},
            "batch[1].timestamp",
        ),
        ("not an object", "batch[1]"),
    ],
)
def test_batch_names_the_bad_message(
    client: TestClient, factory: SessionFactory, message: Any, field: str
) -> None:
    resp = post(client, "/v1/batch", {"batch": [track(type="track", messageId="ok"), message]})
    assert resp.status_code == 200
    [refused] = resp.json()["refused"]
    assert (refused["index"], refused["field"]) == (1, field)
    assert [e.message_id for e in events(factory)] == ["ok"]
    [row] = rejected(factory)
    assert row.field == field
    assert json.loads(row.raw) == message


def test_batch_must_be_a_list(client: TestClient, factory: SessionFactory) -> None:
    resp = post(client, "/v1/batch", {"batch": {"type": "track"}})
    assert resp.status_code == 400
    assert resp.json()["field"] == "batch"


def test_duplicates_inside_one_batch_store_once(
    client: TestClient, factory: SessionFactory, router: RecordingRouter
) -> None:
    message = track(type="track", messageId="same")
    assert post(client, "/v1/batch", {"batch": [message, message]}).status_code == 200
    [event] = events(factory)
    assert router.routed == [event.id]


# --- refused calls ---------------------------------------------------------------------------


def test_malformed_json_names_line_and_column(client: TestClient, factory: SessionFactory) -> None:
    resp = client.post("/v1/track", content=b'{\n  "userId": "u1",\n  "event" "x"\n}', auth=AUTH)
    assert resp.status_code == 400
    assert "line 3, column" in resp.json()["error"]
    assert nothing_written(factory)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event": "x"}, "userId"),
        ({"userId": "", "event": "x"}, "userId"),
        ({"userId": ["u1"], "event": "x"}, "userId"),
        ({"anonymousId": 12, "event": "x"}, "anonymousId"),
        ({"userId": "u1"}, "event"),
        ({"userId": "u1", "event": "x", "properties": [1, 2]}, "properties"),
        ({"userId": "u1", "event": "x", "context": "web"}, "context"),
        ({"userId": "u1", "event": "x", "timestamp": 1714557600}, "timestamp"),
        ({"userId": "u1", "event": "x", "sentAt": "yesterday"}, "sentAt"),
        ({"userId": "u1", "event": "x", "properties": {"note": "a\u0000b"}}, "properties.note"),
        ({"userId": "u1", "event": "x", "context": {"ip": "\ud800"}}, "context.ip"),
    ],
)
def test_invalid_track_names_the_field(
    client: TestClient, factory: SessionFactory, body: dict[str, Any], field: str
) -> None:
    resp = post(client, "/v1/track", body)
    assert resp.status_code == 400
    assert resp.json()["field"] == field
    assert resp.json()["error"]
    assert nothing_written(factory)


def test_unstorable_trait_names_its_path(client: TestClient, factory: SessionFactory) -> None:
    resp = post(client, "/v1/identify", {"userId": "u1", "traits": {"nick": "\u0000"}})
    assert resp.status_code == 400
    assert resp.json()["field"] == "traits.nick"
    assert nothing_written(factory)


def test_identify_traits_must_be_an_object(client: TestClient, factory: SessionFactory) -> None:
    resp = post(client, "/v1/identify", {"userId": "u1", "traits": ["vip"]})
    assert resp.status_code == 400
    assert resp.json() == {"error": "traits must be a JSON object.", "field": "traits"}
    assert nothing_written(factory)


@pytest.mark.parametrize(
    "auth",
    [None, ("wrong-key", ""), ("", WRITE_KEY)],
    ids=["missing", "wrong-key", "key-as-password"],
)
def test_wrong_or_missing_write_key_is_401(
    client: TestClient, factory: SessionFactory, auth: tuple[str, str] | None
) -> None:
    resp = client.post("/v1/track", content=json.dumps(track()).encode(), auth=auth)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic")
    assert resp.json()["error"]
    assert nothing_written(factory)


def test_bearer_token_is_401(client: TestClient, factory: SessionFactory) -> None:
    resp = post(client, "/v1/track", track(), auth=None, headers={"Authorization": "Bearer x"})
    assert resp.status_code == 401
    assert nothing_written(factory)


def test_oversized_single_call_is_413(client: TestClient, factory: SessionFactory) -> None:
    resp = post(client, "/v1/track", track(properties={"blob": "x" * 33 * 1024}))
    assert resp.status_code == 413
    assert "32 KB" in resp.json()["error"]
    assert nothing_written(factory)


def test_oversized_batch_is_413(client: TestClient, factory: SessionFactory) -> None:
    message = track(type="track", properties={"blob": "x" * 20 * 1024})
    resp = post(client, "/v1/batch", {"batch": [message] * 30})
    assert resp.status_code == 413
    assert "500 KB" in resp.json()["error"]
    assert nothing_written(factory)


def test_oversized_message_inside_batch_is_refused_alone(
    client: TestClient, factory: SessionFactory
) -> None:
    big = track(type="track", properties={"blob": "x" * 40 * 1024})
    resp = post(client, "/v1/batch", {"batch": [track(type="track", messageId="ok"), big]})
    assert resp.status_code == 200
    [refused] = resp.json()["refused"]
    assert refused["field"] == "batch[1]"
    assert "32 KB" in refused["reason"]
    assert [e.message_id for e in events(factory)] == ["ok"]


def test_gzip_bomb_is_413(client: TestClient, factory: SessionFactory) -> None:
    body = json.dumps(track(properties={"blob": "x" * 10 * 1024 * 1024})).encode()
    compressed = gzip.compress(body)
    assert len(compressed) < 32 * 1024
    resp = client.post(
        "/v1/track", content=compressed, auth=AUTH, headers={"Content-Encoding": "gzip"}
    )
    assert resp.status_code == 413
    assert "decompressed" in resp.json()["error"]
    assert nothing_written(factory)


@pytest.mark.parametrize(
    "body",
    [b"not gzip at all", gzip.compress(b'{"userId": "u1", "event": "x"}')[:-12]],
    ids=["garbage", "truncated"],
)
def test_bad_gzip_is_400(client: TestClient, factory: SessionFactory, body: bytes) -> None:
    resp = client.post("/v1/track", content=body, auth=AUTH, headers={"Content-Encoding": "gzip"})
    assert resp.status_code == 400
    assert "gzip" in resp.json()["error"]
    assert nothing_written(factory)


# --- profiles --------------------------------------------------------------------------------


def test_identify_fills_profile_columns(
    client: TestClient, factory: SessionFactory, router: RecordingRouter
) -> None:
    traits = {
        "email": "li.lei@example.com",
        "phone": "+86 (138) 0013-8000",
        "locale": "zh-CN",
        "timezone": "Asia/Shanghai",
        "member_tier": "gold",
        "tags": ["vip", "beta"],
        "favourite_colour": "red",
    }
    resp = post(
        client,
        "/v1/identify",
        {
            "userId": "u1",
            "anonymousId": "a1",
            "traits": traits,
            "timestamp": "2024-04-01T00:00:00Z",
        },
    )
    assert resp.status_code == 200
    profile = user(factory, "u1")
    assert profile is not None
    assert profile.email == "li.lei@example.com"
    assert profile.phone == "+8613800138000"
    assert (profile.locale, profile.timezone) == ("zh-CN", "Asia/Shanghai")
    assert (profile.member_tier, profile.tags) == ("gold", ["vip", "beta"])
    assert profile.traits == traits
    assert profile.anonymous_id == "a1"
    assert profile.created_at == datetime(2024, 4, 1, tzinfo=UTC)
    assert profile.last_seen_at == datetime(2024, 4, 1, tzinfo=UTC)
    assert profile.updated_at == NOW
    [event] = events(factory)
    assert event.type == "identify" and event.routed_at == NOW
    assert router.calls == []


def test_malformed_traits_stay_in_traits_only(client: TestClient, factory: SessionFactory) -> None:
    first = {"phone": "+8613800138000", "timezone": "Asia/Shanghai"}
    assert post(client, "/v1/identify", {"userId": "u1", "traits": first}).status_code == 200
    second = {"phone": "138-0013", "timezone": "Mars/Olympus", "tags": "vip"}
    resp = post(client, "/v1/identify", {"userId": "u1", "traits": second})
    assert resp.status_code == 200
    profile = user(factory, "u1")
    assert profile is not None
    assert profile.phone == "+8613800138000"
    assert profile.timezone == "Asia/Shanghai"
    assert profile.tags == []
    assert profile.traits == second


def test_context_locale_and_timezone_fill_the_profile(
    client: TestClient, factory: SessionFactory
) -> None:
    context = {"locale": "en-US", "timezone": "America/New_York"}
    assert post(client, "/v1/track", track(context=context)).status_code == 200
    profile = user(factory, "u1")
    assert profile is not None
    assert (profile.locale, profile.timezone) == ("en-US", "America/New_York")
    # A later identify naming them wins over the device's context.
    body = {"userId": "u1", "traits": {"timezone": "Asia/Shanghai"}, "context": context}
    assert post(client, "/v1/identify", body).status_code == 200
    profile = user(factory, "u1")
    assert profile is not None and profile.timezone == "Asia/Shanghai"


def test_last_seen_at_never_moves_backwards(client: TestClient, factory: SessionFactory) -> None:
    late, early = "2024-04-30T12:00:00Z", "2024-04-29T12:00:00Z"
    assert post(client, "/v1/track", track(timestamp=late)).status_code == 200
    assert post(client, "/v1/track", track(timestamp=early)).status_code == 200
    profile = user(factory, "u1")
    assert profile is not None
    assert profile.last_seen_at == datetime(2024, 4, 30, 12, tzinfo=UTC)
    assert profile.created_at == datetime(2024, 4, 30, 12, tzinfo=UTC)


def test_a_batch_of_calls_updates_each_profile_as_single_calls_would(
    client: TestClient, factory: SessionFactory
) -> None:
    """Users named only by track calls and users with identify calls in one batch: the
    first keep their explicit traits, gain what is missing and move last_seen forward only."""
    traits = {"locale": "zh-CN", "email": "a@example.com"}
    body = {"userId": "u1", "traits": traits, "timestamp": "2024-04-10T00:00:00Z"}
    assert post(client, "/v1/identify", body).status_code == 200
    device = {"locale": "en-US", "timezone": "Asia/Shanghai"}
    batch = [
        # u1: seen earlier than the identify (last_seen stays), then later (moves on).
        track(type="track", anonymousId="anon-1", timestamp="2024-04-09T00:00:00Z", context=device),
        track(type="track", timestamp="2024-04-12T00:00:00Z"),
        # u2: new, its calls out of order in the batch.
        track(type="track", userId="u2", timestamp="2024-04-05T00:00:00Z"),
        track(type="track", userId="u2", timestamp="2024-04-03T00:00:00Z", context=device),
        # u3: an identify and a track in one batch.
        {"type": "identify", "userId": "u3", "traits": {"timezone": "Europe/Paris"},
         "timestamp": "2024-04-02T00:00:00Z"},
        track(type="track", userId="u3", timestamp="2024-04-04T00:00:00Z", context=device),
    ]  # fmt: skip
    resp = post(client, "/v1/batch", {"batch": batch})
    assert resp.status_code == 200 and "refused" not in resp.json()
    u1, u2, u3 = user(factory, "u1"), user(factory, "u2"), user(factory, "u3")
    assert u1 is not None and u2 is not None and u3 is not None
    assert (u1.locale, u1.timezone, u1.email) == ("zh-CN", "Asia/Shanghai", "a@example.com")
    assert u1.anonymous_id == "anon-1"
    assert u1.created_at == datetime(2024, 4, 10, tzinfo=UTC)
    assert u1.last_seen_at == datetime(2024, 4, 12, tzinfo=UTC)
    assert u1.traits == traits and u1.updated_at == NOW
    assert u2.created_at == datetime(2024, 4, 3, tzinfo=UTC)
    assert u2.last_seen_at == datetime(2024, 4, 5, tzinfo=UTC)
    assert (u2.locale, u2.timezone, u2.traits, u2.tags) == ("en-US", "Asia/Shanghai", {}, [])
    assert (u3.timezone, u3.locale) == ("Europe/Paris", "en-US")
    assert u3.last_seen_at == datetime(2024, 4, 4, tzinfo=UTC)


def test_push_token_and_consent_traits(client: TestClient, factory: SessionFactory) -> None:
    traits = {
        "push_token": "tok-abc",
        "push_platform": "iOS",
        "unsubscribed_sms": True,
        "unsubscribed_email": False,
    }
    assert post(client, "/v1/identify", {"userId": "u1", "traits": traits}).status_code == 200
    # The device changes hands: the token follows its new user.
    traits2 = {"push_token": "tok-abc", "unsubscribed_sms": False}
    assert post(client, "/v1/identify", {"userId": "u2", "traits": traits2}).status_code == 200
    with factory() as session:
        [token] = session.scalars(select(PushToken)).all()
        consents = {
            (c.user_id, c.channel): c.status for c in session.scalars(select(Consent)).all()
        }
    assert (token.user_id, token.platform) == ("u2", "ios")
    assert consents == {
        ("u1", "sms"): "unsubscribed",
        ("u1", "email"): "subscribed",
        ("u2", "sms"): "subscribed",
    }


def test_null_router_marks_events_routed(factory: SessionFactory, clock: Clock) -> None:
    client = make_client(factory, NullRouter(factory, clock=clock), clock)
    assert post(client, "/v1/track", track()).status_code == 200
    [event] = events(factory)
    assert event.routed_at == NOW


def test_concurrent_first_calls_for_one_user_all_succeed(
    factory: SessionFactory, router: RecordingRouter
) -> None:
    ingestor = Ingestor(factory, router=router)
    calls = [
        parse_call(
            "track",
            track(messageId=f"c{i}", timestamp=f"2024-04-0{i + 1}T00:00:00Z"),
            received_at=NOW,
        )
        for i in range(8)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        routed = list(pool.map(lambda m: ingestor.store([m]), calls))
    assert all(len(ids) == 1 for ids in routed)
    assert count(factory, Event) == 8
    profile = user(factory, "u1")
    assert profile is not None
    assert profile.last_seen_at == datetime(2024, 4, 8, tzinfo=UTC)


def test_unsupported_content_encoding_is_415(client: TestClient, factory: SessionFactory) -> None:
    resp = post(client, "/v1/track", track(), headers={"Content-Encoding": "br"})
    assert resp.status_code == 415
    assert "gzip" in resp.json()["error"]
    assert nothing_written(factory)


def test_unknown_path_answers_json(client: TestClient) -> None:
    resp = post(client, "/v1/shout", track())
    assert resp.status_code == 404
    assert resp.json() == {"error": "Not Found"}
