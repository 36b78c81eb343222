"""A broadcast's long Chinese SMS, sent in a batch through the real Twilio SDK, is billed
as its segments: the ledger row keeps the count and the broadcast's money review prices it
per segment at the destination's price; a row from before the count costs 1 segment."""

from __future__ import annotations

from datetime import UTC, datetime

from broadcast_support import (
    TEMPLATE,
    add_members,
    audience_file,
    sends,
    stored_broadcast,
    worker_settings,
)
from conftest import Database
from money_support import COSTS
from sms_segments_support import SEGMENTS, long_sms_renderer
from temporalio.testing import ActivityEnvironment

from activities.broadcast import BroadcastActivities
from store.broadcast_money import broadcast_money
from store.db import transaction
from store.models import Message
from worker import build_delivery
from workflows.contracts import BroadcastPageInput, SendBatchInput

pytest_plugins = ["provider_fixtures"]

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


def test_a_broadcast_sms_is_priced_per_segment_it_was_billed_as(
    db: Database, twilio, twilio_server, tmp_path
) -> None:
    add_members(db.factory, "seg", 1, NOW, id="seg-cn")
    add_members(db.factory, "seg", 1, NOW, id="seg-us", phone="+14155550100")
    add_members(db.factory, "other", 1, NOW, id="before")
    broadcast_id = stored_broadcast(db.factory, audience_file(tmp_path, "seg"), NOW)
    delivery = build_delivery(
        worker_settings(quiet_hours=None),
        db.factory,
        channels={"sms": twilio},
        renderer=long_sms_renderer(tmp_path / "templates", TEMPLATE),
    )
    what = {
        "broadcast_id": broadcast_id,
        "key_prefix": "run-1",
        "channel": "sms",
        "template": TEMPLATE,
        "topic": "marketing",
        "now": NOW,
    }
    env = ActivityEnvironment()
    page = env.run(
        BroadcastActivities(db.factory, delivery).broadcast_page,
        BroadcastPageInput(**what, limit=10),  # type: ignore[arg-type]
    )
    assert page.ready == ["seg-cn", "seg-us"]
    result = env.run(delivery.send_batch, SendBatchInput(**what, user_ids=page.ready))  # type: ignore[arg-type]
    assert result.sent == 2 and len(twilio_server.messages) == 2
    # A row from before the ledger kept the count: no segments, and Twilio keeps no body.
    with transaction(db.factory) as session:
        session.add(
            Message(
                idempotency_key="run-0/before", broadcast_id=broadcast_id, user_id="before",
                channel="sms", template=TEMPLATE, status="sent", created_at=NOW, sent_at=NOW,
            )
        )  # fmt: skip

    ledger = sends(db.factory, broadcast_id)
    assert {u: m.segments for u, m in ledger.items()} == {
        "seg-cn": SEGMENTS,
        "seg-us": SEGMENTS,
        "before": None,
    }
    with db.factory() as session:
        review = broadcast_money(session, broadcast_id=broadcast_id, costs=COSTS, now=NOW)
    # 3 segments at 5 fen to China, 3 at 60 to the US, 1 at 5 for the old row.
    assert review.report.journey.treatment.message_fen == SEGMENTS * 5 + SEGMENTS * 60 + 5
