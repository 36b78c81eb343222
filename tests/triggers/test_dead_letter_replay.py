"""The dead-letter table from the command line: list what was refused, replay it after a fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from cli import main
from config import Settings
from store.db import make_engine, make_session_factory, transaction
from store.migrate import upgrade
from store.models import Event, RejectedEvent
from triggers.ingest import NullRouter

WRITE_KEY = "wk-replay"


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    for name in ("LIFECYCLE_ENVIRONMENT", "LIFECYCLE_MAX_JSON_DEPTH"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'replay.db'}"
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", url)
    upgrade(make_engine(url))
    return url


def api(url: str) -> TestClient:
    factory = make_session_factory(make_engine(url))
    settings = Settings(database_url=url, write_key=WRITE_KEY)
    return TestClient(create_app(settings, session_factory=factory, router=NullRouter(factory)))


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stored(url: str) -> list[str]:
    with make_session_factory(make_engine(url))() as session:
        return list(session.scalars(select(Event.message_id).order_by(Event.id)))


def deep(levels: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def test_list_fix_and_replay(url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = {"type": "track", "userId": "u1", "event": "", "messageId": "m-bad"}
    batch = {"batch": [{"type": "track", "userId": "u1", "event": "ok", "messageId": "m-ok"}, bad]}
    resp = api(url).post("/v1/batch", json=batch, auth=(WRITE_KEY, ""))
    assert resp.status_code == 200
    assert stored(url) == ["m-ok"]

    code, out, _ = cli(capsys, "events", "rejected", "--since", "1h")
    assert code == 0
    assert "#1 " in out and "/v1/batch" in out and "batch[1].event" in out
    assert "must not be empty" in out and "[waiting]" in out

    code, _, err = cli(capsys, "events", "replay", "1")
    assert code != 0
    assert "still refused" in err and "Traceback" not in err

    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({**bad, "event": "cart_updated"}))
    code, out, _ = cli(capsys, "events", "replay", "1", "--with", str(fixed))
    assert code == 0, out
    assert "stored as m-bad" in out
    assert stored(url) == ["m-ok", "m-bad"]

    code, _, err = cli(capsys, "events", "replay", "1")
    assert code != 0 and "was replayed" in err
    code, out, _ = cli(capsys, "events", "rejected", "--json")
    [row] = json.loads(out)
    assert row["replayResult"] == "stored as m-bad" and row["messageId"] == "m-bad"
    code, out, _ = cli(capsys, "events", "rejected", "--pending")
    assert out.strip() == "no rejected events"


def test_a_refusal_for_depth_passes_once_the_limit_is_raised(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    call = {"userId": "u1", "event": "x", "messageId": "m-deep", "properties": deep(40)}
    resp = api(url).post("/v1/track", json=call, auth=(WRITE_KEY, ""))
    assert resp.status_code == 400
    assert cli(capsys, "events", "replay", "1")[0] != 0
    monkeypatch.setenv("LIFECYCLE_MAX_JSON_DEPTH", "64")
    code, out, _ = cli(capsys, "events", "replay", "1")
    assert (code, out.strip()) == (0, "#1: stored as m-deep")
    assert stored(url) == ["m-deep"]


def test_a_parked_event_is_queued_for_routing_again(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    factory = make_session_factory(make_engine(url))
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    with transaction(factory) as session:
        event = Event(
            message_id="m-parked",
            type="track",
            user_id="u1",
            event="user_signed_up",
            properties={},
            context={},
            timestamp=now,
            received_at=now,
            route_attempts=5,
        )
        session.add(event)
        session.flush()
        session.add(
            RejectedEvent(
                stage="route",
                source="router",
                message_id="m-parked",
                reason="RuntimeError: boom",
                raw="{}",
                event_id=event.id,
                attempts=5,
                received_at=now,
            )
        )
    code, out, _ = cli(capsys, "events", "rejected", "--stage", "route")
    assert "RuntimeError: boom" in out
    code, out, _ = cli(capsys, "events", "replay", "1")
    assert code == 0 and "pending-event loop" in out
    with factory() as session:
        assert session.scalars(select(Event.route_attempts)).one() == 0


def test_unknown_id_is_a_one_line_error(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "events", "replay", "99")
    assert code != 0
    assert err.strip() == "lifecycle: no rejected event #99"


def test_a_webhook_delivery_is_kept_to_read_not_replayed(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    from store.rejected import Rejection, add_rejections

    factory = make_session_factory(make_engine(url))
    with transaction(factory) as session:
        row = Rejection(
            stage="ingest", source="/webhooks/sendgrid", reason="bad", raw='{"event": "open"}'
        )
        add_rejections(session, rows=[row], at=datetime.now(UTC))
    code, _, err = cli(capsys, "events", "replay", "1")
    assert code != 0
    assert "webhook delivery (/webhooks/sendgrid)" in err and "cannot be replayed" in err
