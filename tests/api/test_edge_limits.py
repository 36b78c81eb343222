"""Bounded shapes at the edge: depth, finite numbers, storable text and sane timestamps,
judged per call, on SQLite and PostgreSQL."""

# The API's fixtures come from test_ingestion; pytest passes them back in by name.
# ruff: noqa: F811

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_ingestion import (  # noqa: F401 - fixtures
    AUTH,
    NOW,
    client,
    clock,
    database,
    events,
    factory,
    rejected,
    router,
    track,
    user,
)

from store.db import SessionFactory


def post_raw(client: TestClient, path: str, text: str) -> Any:
    """Post JSON text as written (lone surrogates and big numbers survive)."""
    return client.post(path, content=text.encode("utf-8"), auth=AUTH)


def nested(levels: int) -> Any:
    """``levels`` objects, one inside the other."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


def test_properties_nest_at_most_32_levels(client: TestClient, factory: SessionFactory) -> None:
    body = {
        "batch": [
            track(type="track", messageId="ok", properties=nested(32)),
            track(type="track", messageId="deep", properties=nested(33)),
            track(type="track", messageId="very-deep", properties=nested(200)),
        ]
    }
    resp = client.post("/v1/batch", content=json.dumps(body).encode(), auth=AUTH)
    assert resp.status_code == 200
    refused = resp.json()["refused"]
    assert [r["messageId"] for r in refused] == ["deep", "very-deep"]
    assert refused[0]["field"] == "batch[1].properties" + ".a" * 32
    assert "deeper than 32 levels" in refused[0]["reason"]
    assert [e.message_id for e in events(factory)] == ["ok"]


def test_a_single_deep_call_is_400_and_kept(client: TestClient, factory: SessionFactory) -> None:
    resp = client.post(
        "/v1/identify",
        content=json.dumps({"userId": "u1", "traits": nested(40)}).encode(),
        auth=AUTH,
    )
    assert resp.status_code == 400
    assert resp.json()["field"].startswith("traits.a.a")
    [row] = rejected(factory)
    assert (row.source, row.stage) == ("/v1/identify", "ingest")
    assert user(factory, "u1") is None


def test_numbers_beyond_a_double_are_refused_per_item(
    client: TestClient, factory: SessionFactory
) -> None:
    text = (
        '{"batch": [{"type": "track", "userId": "u1", "event": "x", "messageId": "ok",'
        ' "properties": {"amount": 2.5e10}},'
        '{"type": "track", "userId": "u1", "event": "x", "messageId": "inf",'
        ' "properties": {"amount": [1, 1e400]}}]}'
    )
    resp = post_raw(client, "/v1/batch", text)
    assert resp.status_code == 200
    [refused] = resp.json()["refused"]
    assert refused["field"] == "batch[1].properties.amount[1]"
    assert "finite" in refused["reason"]
    [stored] = events(factory)
    assert stored.properties == {"amount": 2.5e10}
    [row] = rejected(factory)
    assert "Infinity" in row.raw  # kept as sent, readable


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ('{"note": "a\\u0000b"}', "batch[1].properties.note"),
        ('{"note": "\\ud800"}', "batch[1].properties.note"),
        ('{"k\\udc00ey": 1}', "batch[1].properties.k\\udc00ey"),
    ],
)
def test_unstorable_text_is_refused_with_its_field(
    client: TestClient, factory: SessionFactory, item: str, field: str
) -> None:
    text = (
        '{"batch": [{"type": "track", "userId": "u1", "event": "x", "messageId": "ok"},'
        '{"type": "track", "userId": "u1", "event": "x", "messageId": "bad",'
        f' "properties": {item}}}]}}'
    )
    resp = post_raw(client, "/v1/batch", text)
    assert resp.status_code == 200
    [refused] = resp.json()["refused"]
    assert refused["field"] == field
    assert [e.message_id for e in events(factory)] == ["ok"]
    [row] = rejected(factory)
    assert row.raw.isascii()


def test_a_surrogate_key_in_a_single_call_gets_a_readable_400(
    client: TestClient, factory: SessionFactory
) -> None:
    text = '{"userId": "u1", "event": "x", "properties": {"\\ud800": 1}}'
    resp = post_raw(client, "/v1/track", text)
    assert resp.status_code == 400
    assert resp.json()["field"] == "properties.\\ud800"
    assert len(rejected(factory)) == 1


def test_a_surrogate_in_a_big_item_is_refused_not_a_500(
    client: TestClient, factory: SessionFactory
) -> None:
    blob = "x" * 1000
    text = (
        '{"batch": [{"type": "track", "userId": "u1", "event": "x",'
        f' "properties": {{"blob": "{blob}", "bad": "\\udfff"}}}}]}}'
    )
    resp = post_raw(client, "/v1/batch", text)
    assert resp.status_code == 200
    assert resp.json()["refused"][0]["field"] == "batch[0].properties.bad"


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"timestamp": "0001-01-01T00:00:00+01:00"}, "before 2000-01-01"),
        ({"timestamp": "9999-12-31T23:59:59-01:00"}, "ahead of the time it was received"),
        ({"timestamp": "2999-06-01T00:00:00Z"}, "ahead of the time it was received"),
        ({"timestamp": "1999-12-31T23:59:59Z"}, "before 2000-01-01"),
        (
            {"timestamp": NOW.isoformat(), "sentAt": "9999-12-31T23:59:59Z"},
            "before 2000-01-01",
        ),
        (
            {"timestamp": "9999-12-31T23:59:59Z", "sentAt": "0001-01-01T00:00:00Z"},
            "ahead of the time it was received",
        ),
    ],
)
def test_an_impossible_event_time_becomes_the_receive_time_and_is_flagged(
    client: TestClient, factory: SessionFactory, fields: dict[str, str], why: str
) -> None:
    body = {"batch": [track(type="track", messageId="m1", **fields)]}
    resp = client.post("/v1/batch", content=json.dumps(body).encode(), auth=AUTH)
    assert resp.status_code == 200, resp.text
    assert "refused" not in resp.json()
    [stored] = events(factory)
    assert stored.timestamp == NOW
    flag = stored.context["timestampReplaced"]
    assert why in flag["reason"]
    assert flag["timestamp"] == fields["timestamp"]


def test_a_little_clock_skew_is_kept(client: TestClient, factory: SessionFactory) -> None:
    ahead = NOW + timedelta(minutes=30)
    body = {"batch": [track(type="track", timestamp=ahead.isoformat())]}
    assert client.post("/v1/batch", content=json.dumps(body).encode(), auth=AUTH).is_success
    [stored] = events(factory)
    assert stored.timestamp == ahead
    assert "timestampReplaced" not in stored.context


def test_a_far_future_identify_does_not_keep_a_user_seen_forever(
    client: TestClient, factory: SessionFactory
) -> None:
    body = {"userId": "u1", "traits": {"plan": "vip"}, "timestamp": "9999-12-31T23:59:59Z"}
    resp = client.post("/v1/identify", content=json.dumps(body).encode(), auth=AUTH)
    assert resp.status_code == 200
    profile = user(factory, "u1")
    assert profile is not None and profile.last_seen_at == NOW
