"""The ingestion API fuzzed: Schemathesis generates requests from the app's own OpenAPI schema
(no 5xx, every answer as declared), and Hypothesis drives ``/v1/batch`` with random mixes of
good and bad calls (good ones stored once, bad ones in the dead-letter table, nothing else)."""

# The API's fixtures come from test_ingestion; pytest passes them back in by name.
# ruff: noqa: F811

from __future__ import annotations

import base64
import json
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select
from test_ingestion import AUTH, WRITE_KEY, client, clock, database, factory, router  # noqa: F401

from store.db import SessionFactory, transaction
from store.models import Base, Event, RejectedEvent

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
AUTH_HEADER = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
# Generated cases per operation; 8 operations. Enough to find a 500 from odd text, offsets or
# shapes in a few seconds, bounded so the suite stays quick.
EXAMPLES = 60
INGEST_PATHS = {
    f"/v1/{kind}" for kind in ("identify", "track", "page", "screen", "group", "alias", "batch")
}


def test_every_ingestion_operation_declares_its_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    posts = {path: ops["post"] for path, ops in spec["paths"].items() if "post" in ops}
    ingest = {p: op for p, op in posts.items() if p in INGEST_PATHS}
    assert set(ingest) == INGEST_PATHS
    for path, op in ingest.items():
        assert "application/json" in op["requestBody"]["content"], path
        assert {"200", "400", "401", "413"} <= set(op["responses"]), path


def test_schemathesis_finds_no_5xx_and_no_undeclared_answer(
    client: TestClient, factory: SessionFactory
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    every = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    operations = [op for op in every if op.path in INGEST_PATHS]
    assert len(operations) == 7
    seen: dict[int, int] = {}
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            response = case.call(headers=AUTH_HEADER)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            case.validate_response(response, checks=CHECKS)

        call()
    assert 200 in seen and 400 in seen, seen  # both sides of the contract were exercised


# --- batches of good and bad calls -----------------------------------------------------------

_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8
)
_json_leaf = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | _text
GOOD = st.fixed_dictionaries(
    {
        "type": st.just("track"),
        "userId": st.sampled_from(["u1", "u2", "用户3"]),
        "event": st.sampled_from(["page_viewed", "cart_updated"]),
        "properties": st.dictionaries(_text, _json_leaf, max_size=3),
    }
)
BAD = st.one_of(
    st.fixed_dictionaries({"type": st.just("track"), "userId": st.just("u1")}),  # no event
    st.fixed_dictionaries({"type": st.just("shout"), "userId": st.just("u1")}),
    st.fixed_dictionaries(
        {
            "type": st.just("track"),
            "userId": st.just("u1"),
            "event": st.just("x"),
            "properties": st.just({"bad": "\x00"}),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("identify"), "userId": st.just("u1"), "traits": st.just(["no"])}
    ),
    st.fixed_dictionaries(
        {"type": st.just("track"), "userId": st.integers(), "event": st.just("x")}
    ),
    st.integers(),
    st.just("not an object"),
)


def _empty(factory: SessionFactory) -> None:
    with transaction(factory) as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(items=st.lists(st.tuples(st.booleans(), GOOD, BAD), min_size=1, max_size=12))
def test_good_calls_are_stored_once_and_bad_ones_kept_aside(
    client: TestClient, factory: SessionFactory, items: list[tuple[bool, Any, Any]]
) -> None:
    _empty(factory)
    batch, good_ids, bad_indexes = [], [], []
    for i, (is_good, good, bad) in enumerate(items):
        if is_good:
            good = {**good, "messageId": f"m{i}"}
            good_ids.append(good["messageId"])
            batch.append(good)
        else:
            bad_indexes.append(i)
            batch.append(bad)
    for _ in range(2):  # a client retrying the same batch changes nothing
        resp = client.post(
            "/v1/batch", content=json.dumps(batch).join(['{"batch":', "}"]).encode(), auth=AUTH
        )
        assert resp.status_code == 200, resp.text
        assert [r["index"] for r in resp.json().get("refused", [])] == bad_indexes
    with factory() as session:
        stored = list(session.scalars(select(Event.message_id).order_by(Event.id)))
        rejected = list(session.scalars(select(RejectedEvent.raw).order_by(RejectedEvent.id)))
    assert stored == good_ids
    bad_with_ids = [
        batch[i] for i in bad_indexes if isinstance(batch[i], dict) and "messageId" in batch[i]
    ]
    assert not bad_with_ids
    # Without a messageId a retried bad call cannot be told apart: kept once per delivery.
    assert [json.loads(raw) for raw in rejected] == [batch[i] for i in bad_indexes] * 2
