"""The console's dead-letter page: what the API refused, with its reason, and a replay."""

from __future__ import annotations

import json

from console_support import NOW
from sqlalchemy import select
from test_data_pages import rows

from store.db import transaction
from store.models import Event
from store.rejected import Rejection, add_rejections


def test_refused_calls_are_listed_and_replayed(db, admin):
    http, csrf = admin
    bad = {"type": "track", "userId": "u1", "event": "x", "messageId": "m-1", "properties": []}
    fixable = {"type": "track", "userId": "u1", "event": "x", "messageId": "m-2", "sentAt": 7}
    with transaction(db.factory) as session:
        add_rejections(
            session,
            rows=[
                Rejection(
                    stage="ingest",
                    source="/v1/batch",
                    reason="batch[0].properties must be a JSON object.",
                    raw=json.dumps(bad),
                    message_id="m-1",
                    field="batch[0].properties",
                ),
                Rejection(
                    stage="ingest",
                    source="/v1/batch",
                    reason="the limit was lower then",
                    raw=json.dumps({**fixable, "sentAt": NOW.isoformat()}),
                    message_id="m-2",
                ),
            ],
            at=NOW,
        )

    page = http.get("/console/rejected").text
    listed = rows(page, "rejected")
    assert list(listed) == ["2", "1"]
    assert "batch[0].properties must be a JSON object." in listed["1"]
    assert "Waiting now: 2 refused, 0 parked" in page

    still = http.post("/console/rejected/1/replay", data={"csrf": csrf})
    assert still.status_code == 303
    assert "still+refused" in still.headers["location"]
    done = http.post("/console/rejected/2/replay", data={"csrf": csrf})
    assert "stored+as+m-2" in done.headers["location"]
    with db.factory() as session:
        assert list(session.scalars(select(Event.message_id))) == ["m-2"]
    waiting = rows(http.get("/console/rejected?pending=1").text, "rejected")
    assert list(waiting) == ["1"]
    assert http.post("/console/rejected/1/replay", data={"csrf": "forged"}).status_code == 403
