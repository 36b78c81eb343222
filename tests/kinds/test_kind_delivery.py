"""The sender asks a message's kind, not its name: what it carries (the one-click unsubscribe
link) and what a refusal teaches (a dead address is a device token to forget only for a kind
addressed by device tokens)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Database
from sqlalchemy import select
from temporalio.exceptions import ApplicationError

import kinds
from channels.base import OutboundMessage, PermanentSendError, SendResult
from delivery_support import deliver, delivery_activities
from journey_support import add_enrollment, add_user, ledger
from kinds import ChannelKind, ProfileTrait, TemplateParts, Wording
from message_templates.render import TemplateRenderer
from store.db import transaction
from store.models import PushToken, User
from workflows.journey_contracts import DeliverInput, EventSignal

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai

# A mail-like kind that carries the unsubscribe link, and whose dead address is a trait.
LETTER = ChannelKind(
    name="letter",
    address=ProfileTrait("letterbox"),
    template=TemplateParts(required=frozenset({"body"})),
    wording=Wording(zh="信件", en="letters"),
    one_click_unsubscribe=True,
    refusals={"no_such_box": "address_dead"},
)


class Recording:
    """A sender that keeps what it was given, or refuses it for ``refusal``."""

    name = "recording"

    def __init__(self, refusal: str | None = None):
        self.sent: list[OutboundMessage] = []
        self._refusal = refusal

    def send(self, message: OutboundMessage) -> SendResult:
        if self._refusal:
            raise PermanentSendError(self._refusal)
        self.sent.append(message)
        return SendResult(provider=self.name, provider_message_id=f"r-{len(self.sent)}")


@pytest.fixture(autouse=True)
def letter() -> Iterator[ChannelKind]:
    with kinds.registered(LETTER) as described:
        yield described


@pytest.fixture
def renderer(tmp_path: Path) -> TemplateRenderer:
    (tmp_path / "hello_letter.yaml").write_text(
        "channel: letter\nlocales:\n  zh-CN:\n    body: 你好\n", encoding="utf-8"
    )
    return TemplateRenderer(tmp_path)


def letter_to(db: Database, user_id: str, letterbox: str) -> DeliverInput:
    add_user(db.factory, user_id, NOW)  # with a push token, token-<user>
    with transaction(db.factory) as session:
        session.get_one(User, user_id).traits = {"letterbox": letterbox}
    return DeliverInput(
        idempotency_key=f"run-{user_id}/hello/1",
        enrollment_id=add_enrollment(db.factory, user_id, NOW, journey_id="letters"),
        journey_id="letters",
        step_id="hello",
        user_id=user_id,
        channel="letter",
        template="hello_letter",
        topic="transactional",
        group="treatment",
        now=NOW,
        trigger=EventSignal(message_id=f"m-{user_id}", event="user_signed_up", timestamp=NOW),
    )


def test_a_kind_that_carries_the_unsubscribe_link_gets_it(sqlite_db, renderer):
    channel = Recording()
    activities = delivery_activities(sqlite_db.factory, {"letter": channel}, renderer=renderer)

    assert deliver(activities, letter_to(sqlite_db, "u-letter", "box-7")).status == "sent"

    (sent,) = channel.sent
    assert (sent.channel, sent.to, sent.body) == ("letter", "box-7", "你好")
    assert sent.unsubscribe_url and sent.unsubscribe_url.startswith("http://127.0.0.1:8000/u/")


def test_a_dead_address_that_is_no_device_token_forgets_no_token(sqlite_db, renderer):
    channel = Recording(refusal="no_such_box")
    activities = delivery_activities(sqlite_db.factory, {"letter": channel}, renderer=renderer)

    with pytest.raises(ApplicationError) as caught:
        # A letterbox written like the user's device token: still no token of theirs.
        deliver(activities, letter_to(sqlite_db, "u-dead-box", "token-u-dead-box"))

    assert caught.value.non_retryable and caught.value.type == "no_such_box"
    ((status, reason),) = [(m.status, m.reason) for m in ledger(sqlite_db.factory, "u-dead-box")]
    assert (status, reason) == ("failed", "no_such_box")
    with sqlite_db.factory() as session:
        tokens = session.scalars(select(PushToken.token).where(PushToken.user_id == "u-dead-box"))
        assert list(tokens) == ["token-u-dead-box"]
