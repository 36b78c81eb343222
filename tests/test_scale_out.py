"""Scaled out: two API processes and two workers on one Temporal dev server and one database.

Every user's calls go to both APIs at once (a client whose retry lands on the other replica,
the same ``messageId``s), and two ``python -m cli worker`` processes poll the same task
queues. Afterwards each event is stored once and routed, each user ran the journey once,
every SMS step reached the Twilio stand-in exactly once, and both workers sent some of them.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from conftest import Database
from sqlalchemy import func, select

from bench.chaos_kill_worker import (
    JOURNEY_ID,
    SMS_STEPS,
    CountingTwilio,
    WorkerProcess,
    _people,
    _worker_env,
    free_port,
    journey_yaml,
    temporal_dev_server,
    verify,
)
from bench.chaos_parts import ApiProcess
from journeys.validate import load_journey
from message_templates.render import TemplateRenderer
from store.db import transaction
from store.journeys import publish
from store.models import Enrollment, Event
from support import assert_eventually

USERS = 24
WRITE_KEY = "dev-write-key"


def _calls(people: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    calls: list[dict[str, Any]] = []
    for user_id, traits in people:
        calls.append(
            {"type": "identify", "userId": user_id, "traits": traits, "messageId": f"id-{user_id}"}
        )
        calls.append(
            {
                "type": "track",
                "userId": user_id,
                "event": "product_viewed",
                "properties": {"product_id": "sku-1", "category": "beauty"},
                "messageId": f"view-{user_id}",
                "timestamp": now,
            }
        )
    return calls


def _post_everything_twice(apis: list[ApiProcess], calls: list[dict[str, Any]]) -> list[str]:
    """Each batch of 8 calls to every API at the same moment; the answers that were not 200."""
    problems: list[str] = []

    def post(api: ApiProcess, batch: list[dict[str, Any]], go: threading.Barrier) -> None:
        body = json.dumps({"batch": batch})
        go.wait()
        resp = httpx.post(f"{api.url}/v1/batch", content=body, auth=(WRITE_KEY, ""), timeout=60)
        if resp.status_code != 200 or "refused" in resp.json():
            problems.append(f"{api.url}: {resp.status_code} {resp.text[:200]}")

    for start in range(0, len(calls), 8):
        batch = calls[start : start + 8]
        go = threading.Barrier(len(apis))
        threads = [threading.Thread(target=post, args=(api, batch, go)) for api in apis]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return problems


def _sends_by_worker(metrics_url: str) -> float:
    text = httpx.get(metrics_url, timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("lifecycle_sends_total{")
    )


def test_two_apis_and_two_workers_route_each_event_once_and_send_each_step_once(
    db: Database, tmp_path: Path
) -> None:
    twilio = CountingTwilio()
    twilio.start()
    started: list[WorkerProcess | ApiProcess] = []
    try:
        with temporal_dev_server(tmp_path) as address:
            source = journey_yaml("1s")
            journey_file = tmp_path / f"{JOURNEY_ID}.yaml"
            journey_file.write_text(source, encoding="utf-8")
            with transaction(db.factory) as session:
                publish(
                    session,
                    journey=load_journey(journey_file, TemplateRenderer()),
                    source=source,
                    now=datetime.now(UTC),
                )
            env = _worker_env(
                db.url, address, f"scale-{uuid.uuid4().hex[:8]}", twilio.url, tmp_path
            )
            workers: list[WorkerProcess] = []
            metrics: list[str] = []
            for n in (1, 2):
                folder = tmp_path / f"worker-{n}"
                folder.mkdir()
                port = free_port()
                metrics.append(f"http://127.0.0.1:{port}/metrics")
                worker_env = {**env, "LIFECYCLE_WORKER_METRICS_ADDRESS": f"127.0.0.1:{port}"}
                workers.append(WorkerProcess(worker_env, folder))
            apis: list[ApiProcess] = []
            for n in (1, 2):
                folder = tmp_path / f"api-{n}"
                folder.mkdir()
                apis.append(ApiProcess(env, folder))
            parts: list[WorkerProcess | ApiProcess] = [*workers, *apis]
            for part in parts:
                part.start()
                started.append(part)
            assert_eventually(
                lambda: all(w.ready() for w in workers),
                timeout=90,
                interval=0.2,
                message="the workers did not become ready",
            )

            people = _people(random.Random(20261205), USERS, uuid.uuid4().hex[:6])
            calls = _calls(people)
            assert _post_everything_twice(apis, calls) == []

            def all_runs_ended() -> bool:
                with transaction(db.factory) as session:
                    open_runs = session.scalar(
                        select(func.count())
                        .select_from(Enrollment)
                        .where(Enrollment.exited_at.is_(None))
                    )
                    entered = session.scalar(select(func.count()).select_from(Enrollment))
                if entered == USERS and open_runs == 0:
                    return True
                for w in workers:
                    w.check_alive()  # a worker that died fails the test now, not at the deadline
                raise AssertionError(f"{entered} entered, {open_runs} still open")

            assert_eventually(all_runs_ended, timeout=240, interval=0.5)
            sends_per_worker = [_sends_by_worker(url) for url in metrics]

        checked = verify(db.factory, people, twilio, [])
        with transaction(db.factory) as session:
            stored = session.scalar(select(func.count()).select_from(Event))
            # The calls posted (coupon_issued events may wait for the pending-event loop).
            unrouted = session.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.routed_at.is_(None), Event.message_id.not_like("coupon-issued:%"))
            )
            entries = session.execute(
                select(Enrollment.user_id, func.count())
                .group_by(Enrollment.user_id)
                .having(func.count() > 1)
            ).all()
    finally:
        for part in started:
            part.stop()
        twilio.stop()

    # Posted twice, stored once, and routed.
    assert stored == len(calls) + USERS  # + one coupon_issued per user
    assert unrouted == 0
    assert entries == []
    assert checked.missing == [] and checked.duplicates == []
    sent = [o for o in checked.outcomes if o.status in {"sent", "delivered"}]
    assert len(sent) == USERS * len(SMS_STEPS)
    assert twilio.created_count() == USERS * len(SMS_STEPS)
    assert checked.coupon_duplicates == 0 and checked.to_mismatches == 0
    # Both workers took their share of the sends.
    assert sum(sends_per_worker) == USERS * len(SMS_STEPS)
    assert all(n > 0 for n in sends_per_worker), sends_per_worker
