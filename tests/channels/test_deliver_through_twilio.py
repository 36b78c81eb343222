"""A journey's welcome SMS through ``deliver`` and the real Twilio SDK, to the ledger."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.coupons import CouponActivities
from activities.delivery import DeliveryActivities
from channels.base import OutboundMessage, SendResult, TransientSendError
from channels.twilio_sms import TwilioSmsChannel
from delivery_support import deliver, delivery_activities
from journey_support import add_user, ledger
from store.db import transaction
from store.models import Enrollment
from workflows.contracts import DeliverInput, DeliverResult, EventSignal, IssueCouponInput
from workflows.ids import journey_workflow_id

NOW = datetime(2025, 5, 1, 2, 0, tzinfo=UTC)
JOURNEY = "new_user_coupon"

pytest_plugins = ["provider_fixtures"]


def welcome_sms_input(db, user_id: str) -> DeliverInput:
    """The input the journey's ``welcome_sms`` step gives ``deliver``, after its coupon."""
    add_user(db.factory, user_id, NOW, phone="+8613800138000")
    with transaction(db.factory) as session:
        enrollment = Enrollment(
            journey_id=JOURNEY,
            journey_version=1,
            user_id=user_id,
            group="treatment",
            workflow_id=journey_workflow_id(JOURNEY, user_id),
            entered_at=NOW,
        )
        session.add(enrollment)
        session.flush()
        enrollment_id = enrollment.id
    coupon = CouponActivities(db.factory).issue_coupon(
        IssueCouponInput(
            issue_key=f"run-{user_id}/welcome_coupon/1",
            user_id=user_id,
            journey_id=JOURNEY,
            amount_fen=2000,
            min_spend_fen=5000,
            valid_for=timedelta(days=7),
            now=NOW,
        )
    )
    return DeliverInput(
        idempotency_key=f"run-{user_id}/welcome_sms/1",
        enrollment_id=enrollment_id,
        journey_id=JOURNEY,
        step_id="welcome_sms",
        user_id=user_id,
        channel="sms",
        template="new_user_welcome_sms",
        topic="marketing",
        group="treatment",
        now=NOW,
        trigger=EventSignal(message_id="m-1", event="user_signed_up", timestamp=NOW),
        coupon_id=coupon.coupon_id,
    )


def delivery(db, twilio) -> DeliveryActivities:
    return delivery_activities(db.factory, {"sms": twilio})


def test_welcome_sms_is_sent_by_twilio_and_the_ledger_keeps_its_sid(
    sqlite_db, twilio, twilio_server
):
    inp = welcome_sms_input(sqlite_db, "u-twilio-1")

    result = deliver(delivery(sqlite_db, twilio), inp)

    assert result.status == "sent"
    [request] = twilio_server.messages
    assert request.body["To"] == "+8613800138000"
    assert "新人专享券" in request.body["Body"] and request.body["Body"].endswith("回T退订")
    [row] = ledger(sqlite_db.factory, "u-twilio-1")
    assert (row.status, row.provider) == ("sent", "twilio")
    assert row.provider_message_id == twilio_server.sids[0]


def test_opted_out_recipient_fails_the_row_and_is_not_retried(sqlite_db, twilio, twilio_server):
    inp = welcome_sms_input(sqlite_db, "u-twilio-2")
    twilio_server.fail_next(400, code=21610)

    with pytest.raises(ApplicationError) as caught:
        deliver(delivery(sqlite_db, twilio), inp)

    assert caught.value.non_retryable
    assert caught.value.type == "opted_out"
    assert "13800138000" not in str(caught.value)
    [row] = ledger(sqlite_db.factory, "u-twilio-2")
    assert (row.status, row.reason, row.provider) == ("failed", "opted_out", "twilio")
    # A retried activity finds the settled row and does not call Twilio again.
    assert deliver(delivery(sqlite_db, twilio), inp).status == "failed"
    assert len(twilio_server.messages) == 1


def test_rate_limited_send_stays_unsent_and_the_retry_sends_once(sqlite_db, twilio, twilio_server):
    inp = welcome_sms_input(sqlite_db, "u-twilio-3")
    twilio_server.fail_next(429, code=20429, retry_after=5)

    with pytest.raises((TransientSendError, ApplicationError)) as caught:
        deliver(delivery(sqlite_db, twilio), inp)
    # Retryable, with Twilio's delay: as the channel's error, or as Temporal's own.
    error = caught.value
    if isinstance(error, ApplicationError):
        assert not error.non_retryable and error.next_retry_delay == timedelta(seconds=5)
    else:
        assert error.retry_after == 5
    [row] = ledger(sqlite_db.factory, "u-twilio-3")
    assert row.status == "sending"  # passed the policy, not sent yet: the retry sends it

    assert deliver(delivery(sqlite_db, twilio), inp).status == "sent"
    [row] = ledger(sqlite_db.factory, "u-twilio-3")
    assert (row.status, row.provider_message_id) == ("sent", twilio_server.sids[0])


class WorkerKilled(Exception):
    """Stands for a SIGKILL: the attempt ends with nothing recorded after this point."""


class DiesAround:
    """Twilio, with the worker dying just after (or just before) the provider call."""

    name = "twilio"

    def __init__(self, twilio: TwilioSmsChannel, *, reached_twilio: bool):
        self.twilio = twilio
        self.reached_twilio = reached_twilio

    def send(self, message: OutboundMessage) -> SendResult:
        if self.reached_twilio:
            self.twilio.send(message)
        raise WorkerKilled


def retried(db, twilio: TwilioSmsChannel, inp: DeliverInput) -> DeliverResult:
    """``send_message`` as Temporal runs it again after the first attempt was lost."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=2)
    result: DeliverResult = env.run(delivery(db, twilio).send_message, inp)
    return result


def test_a_retry_after_the_worker_died_adopts_the_sms_twilio_already_has(
    sqlite_db, twilio, twilio_server
):
    inp = welcome_sms_input(sqlite_db, "u-twilio-4")
    with pytest.raises(WorkerKilled):
        deliver(delivery(sqlite_db, DiesAround(twilio, reached_twilio=True)), inp)
    [row] = ledger(sqlite_db.factory, "u-twilio-4")
    assert (row.status, row.provider_message_id) == ("sending", None)
    assert twilio_server.lists == []  # a first attempt does not look

    result = retried(sqlite_db, twilio, inp)

    assert result.status == "sent"
    assert len(twilio_server.messages) == 1  # the user got one SMS, not two
    [row] = ledger(sqlite_db.factory, "u-twilio-4")
    assert (row.status, row.provider_message_id) == ("sent", twilio_server.sids[0])


def test_a_retry_sends_when_the_lost_attempt_never_reached_twilio(sqlite_db, twilio, twilio_server):
    inp = welcome_sms_input(sqlite_db, "u-twilio-5")
    with pytest.raises(WorkerKilled):
        deliver(delivery(sqlite_db, DiesAround(twilio, reached_twilio=False)), inp)

    result = retried(sqlite_db, twilio, inp)

    assert result.status == "sent"
    assert len(twilio_server.lists) == 1 and len(twilio_server.messages) == 1
    [row] = ledger(sqlite_db.factory, "u-twilio-5")
    assert row.provider_message_id == twilio_server.sids[0]


def test_an_opt_out_learnt_at_send_time_does_not_undo_a_newer_opt_in(
    sqlite_db, twilio, twilio_server
):
    from store.models import Consent
    from store.webhooks import set_consent

    inp = welcome_sms_input(sqlite_db, "u-twilio-9")
    with transaction(sqlite_db.factory) as session:  # replied START after the send was decided
        set_consent(
            session,
            user_ids=["u-twilio-9"],
            channel="sms",
            status="subscribed",
            source="sms_keyword",
            at=inp.now + timedelta(minutes=1),
            topics=("marketing", "transactional"),
        )
    twilio_server.fail_next(400, code=21610)

    with pytest.raises(ApplicationError):
        deliver(delivery(sqlite_db, twilio), inp)

    with sqlite_db.factory() as session:
        rows = session.query(Consent).filter_by(user_id="u-twilio-9", channel="sms").all()
    assert {r.topic: r.status for r in rows} == {
        "marketing": "subscribed",
        "transactional": "subscribed",
    }
