"""``deliver`` through SendGrid and FCM's real clients, and a Retry-After past the cap."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from test_deliver_through_twilio import welcome_sms_input

import message_templates
from channels.base import MAX_RETRY_AFTER, TransientSendError
from delivery_support import deliver, delivery_activities
from journey_support import ledger
from message_templates.render import TemplateRenderer
from store.db import transaction
from store.models import PushToken
from workflows.contracts import DeliverInput

pytest_plugins = ["provider_fixtures"]


def as_step(inp: DeliverInput, channel: str, template: str) -> DeliverInput:
    return dataclasses.replace(
        inp,
        channel=channel,
        template=template,
        step_id=template,
        idempotency_key=inp.idempotency_key.replace("welcome_sms", template),
    )


def test_an_email_sendgrid_accepts_without_an_id_is_sent_once(sqlite_db, sendgrid, sendgrid_server):
    inp = as_step(welcome_sms_input(sqlite_db, "u-sg-1"), "email", "new_user_last_chance_email")
    activities = delivery_activities(sqlite_db.factory, {"email": sendgrid})
    sendgrid_server.omit_message_id_next()

    result = deliver(activities, inp)

    assert result.status == "sent"
    [row] = ledger(sqlite_db.factory, "u-sg-1")
    assert (row.status, row.provider, row.provider_message_id) == ("sent", "sendgrid", None)
    # The Event Webhook finds the row by the key SendGrid echoes from the custom args.
    [request] = sendgrid_server.mails
    assert request.body["personalizations"][0]["custom_args"] == {
        "lifecycle_key": row.idempotency_key
    }
    assert deliver(activities, inp).status == "sent"  # a retried activity does not resend
    assert len(sendgrid_server.mails) == 1


def test_a_token_of_another_firebase_project_is_forgotten(sqlite_db, fcm, fcm_server):
    inp = as_step(welcome_sms_input(sqlite_db, "u-fcm-1"), "push", "new_user_reminder_push")
    fcm_server.foreign.add("token-u-fcm-1")
    activities = delivery_activities(sqlite_db.factory, {"push": fcm})

    with pytest.raises(ApplicationError) as caught:
        deliver(activities, inp)

    assert caught.value.non_retryable and caught.value.type == "unregistered_token"
    [row] = ledger(sqlite_db.factory, "u-fcm-1")
    assert (row.status, row.reason) == ("failed", "unregistered_token")
    with transaction(sqlite_db.factory) as session:
        assert session.scalars(select(PushToken).where(PushToken.user_id == "u-fcm-1")).all() == []


def test_a_retry_after_in_2099_waits_ten_minutes_not_73_years(sqlite_db, twilio, twilio_server):
    inp = welcome_sms_input(sqlite_db, "u-twilio-cap")
    twilio_server.fail_next(429, code=20429, retry_after="Thu, 01 Jan 2099 00:00:00 GMT")
    activities = delivery_activities(sqlite_db.factory, {"sms": twilio})

    with pytest.raises((TransientSendError, ApplicationError)) as caught:
        deliver(activities, inp)

    error = caught.value
    cap = timedelta(seconds=MAX_RETRY_AFTER)
    if isinstance(error, ApplicationError):
        assert not error.non_retryable and error.next_retry_delay == cap
    else:
        assert error.retry_after == MAX_RETRY_AFTER
    assert cap == timedelta(minutes=10)


def test_a_journey_push_carries_the_template_priority_ttl_and_sound(
    sqlite_db, fcm, fcm_server, tmp_path
):
    templates = tmp_path / "templates"
    shutil.copytree(Path(message_templates.__file__).parent / "templates", templates)
    path = templates / "new_user_reminder_push.yaml"
    path.write_text(path.read_text() + "priority: high\nttl: 6h\nsound: default\n")
    inp = as_step(welcome_sms_input(sqlite_db, "u-fcm-2"), "push", "new_user_reminder_push")
    activities = delivery_activities(
        sqlite_db.factory, {"push": fcm}, renderer=TemplateRenderer(templates)
    )

    assert deliver(activities, inp).status == "sent"

    [request] = fcm_server.sends
    message = request.body["message"]
    assert message["android"]["priority"].lower() == "high"
    assert message["android"]["ttl"] == "21600s"
    assert message["apns"]["payload"]["aps"]["sound"] == "default"
