"""Events no journey acts on are stored routed and never reach the router; the ones some
journey version acts on (a trigger, a goal, an exit, a wait) are routed."""

# The API's fixtures come from test_ingestion; pytest passes them back in by name.
# ruff: noqa: F811

from __future__ import annotations

from fastapi.testclient import TestClient
from test_ingestion import (  # noqa: F401
    NOW,
    WRITE_KEY,
    Clock,
    RecordingRouter,
    clock,
    database,
    events,
    factory,
    post,
    router,
    track,
)

from api.app import create_app
from config import Settings
from enrollment.router import ActedOnEvents
from journey_support import publish_shipped
from store.db import SessionFactory


def client_with(factory: SessionFactory, router: RecordingRouter, clock: Clock) -> TestClient:
    settings = Settings(write_key=WRITE_KEY, environment="development")
    app = create_app(
        settings,
        session_factory=factory,
        router=router,
        clock=clock,
        acted_on=ActedOnEvents(),
    )
    return TestClient(app)


def test_only_events_a_journey_acts_on_reach_the_router(
    factory: SessionFactory, router: RecordingRouter, clock: Clock
) -> None:
    publish_shipped(factory, "new_user_coupon", NOW)
    client = client_with(factory, router, clock)
    batch = {
        "batch": [
            track(type="track", event="product_viewed", messageId="view"),
            track(type="track", event="user_signed_up", messageId="signup"),
            track(type="track", event="order_placed", messageId="order"),  # the goal
        ]
    }
    assert post(client, "/v1/batch", batch).status_code == 200
    stored = {e.message_id: e for e in events(factory)}
    assert stored["view"].routed_at == NOW  # stored routed: nothing acts on it
    assert sorted(router.routed) == sorted([stored["signup"].id, stored["order"].id])


def test_a_journey_published_later_acts_on_its_events(
    factory: SessionFactory, router: RecordingRouter, clock: Clock
) -> None:
    client = client_with(factory, router, clock)
    signup = {"batch": [track(type="track", event="user_signed_up", messageId="s1")]}
    post(client, "/v1/batch", signup)
    assert router.routed == []  # no journey yet: only stored
    publish_shipped(factory, "new_user_coupon", NOW)
    post(
        client,
        "/v1/batch",
        {"batch": [track(type="track", event="user_signed_up", messageId="s2")]},
    )
    [second] = [e for e in events(factory) if e.message_id == "s2"]
    assert router.routed == [second.id]
