"""/healthz and /readyz of the production app, over HTTP: up, and with a dependency down."""

from __future__ import annotations

import socket
import time

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from test_end_to_end import api_server, free_port, settings_for

from config import package_binary


def dead_postgres() -> str:
    """A PostgreSQL URL nothing listens on."""
    return f"postgresql+psycopg://lifecycle@127.0.0.1:{free_port()}/test"


async def test_ready_when_the_database_and_temporal_answer(dev_env, db, task_queue):
    async with (
        api_server(settings_for(db, dev_env, task_queue)) as api,
        httpx.AsyncClient(base_url=api.base_url) as http,  # no write key: probes have none
    ):
        alive = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert alive.status_code == 200 and alive.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "temporal": "ok"},
        "details": {"dead_letters": {"ingest": 0, "route": 0}},
    }


async def test_refused_calls_are_counted_in_readyz_and_metrics(dev_env, sqlite_db, task_queue):
    async with api_server(settings_for(sqlite_db, dev_env, task_queue)) as api:
        batch = {
            "batch": [
                {"type": "track", "userId": "u1", "event": "x", "messageId": "a"},
                {"type": "track", "userId": "u1", "event": "", "messageId": "b"},
                {"type": "shout", "userId": "u1"},
            ]
        }
        resp = await api.post("/v1/batch", json=batch)
        ready = await api.get("/readyz")
        exposition = (await api.get("/metrics")).text
    assert resp.status_code == 200 and len(resp.json()["refused"]) == 2
    assert ready.json()["details"] == {"dead_letters": {"ingest": 2, "route": 0}}
    assert 'lifecycle_events_rejected_total{stage="ingest"} 2.0' in exposition


async def test_temporal_unreachable_is_503_naming_temporal(sqlite_db, task_queue, dev_env):
    settings = settings_for(
        sqlite_db, dev_env, task_queue, temporal_address=f"127.0.0.1:{free_port()}"
    )
    async with api_server(settings) as http:
        alive = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert alive.status_code == 200  # alive: the process answers without its dependencies
    assert ready.status_code == 503
    body = ready.json()
    assert body["down"] == ["temporal"] and body["error"] == "not ready: temporal unreachable"
    assert body["checks"]["database"] == "ok"
    assert "ConnectionRefused" in body["checks"]["temporal"]


async def test_database_unreachable_is_503_naming_the_database(dev_env, sqlite_db, task_queue):
    settings = settings_for(sqlite_db, dev_env, task_queue, database_url=dead_postgres())
    async with api_server(settings) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["down"] == ["database"] and body["checks"]["temporal"] == "ok"
    assert body["checks"]["database"].startswith("OperationalError")


async def test_readiness_follows_temporal_going_away(sqlite_db, task_queue):
    own = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(package_binary("temporal")),
    )
    stopped = False
    try:
        async with api_server(settings_for(sqlite_db, own, task_queue)) as http:
            assert (await http.get("/readyz")).status_code == 200
            await own.shutdown()
            stopped = True
            ready = await http.get("/readyz")
            assert ready.status_code == 503, ready.text
            assert ready.json()["down"] == ["temporal"]
            assert (await http.get("/healthz")).status_code == 200
    finally:
        if not stopped:
            await own.shutdown()


async def test_both_down_names_both(task_queue, dev_env, sqlite_db):
    settings = settings_for(
        sqlite_db,
        dev_env,
        task_queue,
        database_url=dead_postgres(),
        temporal_address=f"127.0.0.1:{free_port()}",
    )
    async with api_server(settings) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["error"] == "not ready: database, temporal unreachable"


async def test_a_temporal_that_never_answers_is_503_within_the_check_timeout(
    sqlite_db, task_queue, dev_env
):
    with socket.socket() as silent:  # accepts connections (backlog), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        async with api_server(
            settings_for(sqlite_db, dev_env, task_queue, temporal_address=address)
        ) as http:
            started = time.monotonic()
            ready = await http.get("/readyz")
            took = time.monotonic() - started
    assert ready.status_code == 503
    assert ready.json()["checks"]["temporal"] == "no answer within 3s"
    assert 2.5 < took < 6  # a probe with a 10 s timeout gets its answer


async def test_calls_while_the_database_is_down_get_a_503_to_retry(dev_env, sqlite_db, task_queue):
    settings = settings_for(sqlite_db, dev_env, task_queue, database_url=dead_postgres())
    async with api_server(settings) as api:
        resp = await api.post("/v1/track", json={"userId": "u1", "event": "x"})
    assert resp.status_code == 503  # Segment's clients retry a 503; a 500 looks like a bug
    assert resp.json() == {"error": "the database is unavailable; retry"}
    assert resp.headers["retry-after"] == "2"
