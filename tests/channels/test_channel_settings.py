"""Choosing providers in settings: credentials are checked, and the worker builds the sender."""

from __future__ import annotations

import os

import pytest
from channel_support import email, push, sms
from provider_servers import FCM_PROJECT, SENDGRID_KEY, TWILIO_SID, TWILIO_TOKEN
from pydantic import ValidationError

import compose
from channels.fcm_push import FcmPushChannel
from channels.outbox import OutboxChannel
from channels.sendgrid_email import SendGridEmailChannel
from channels.twilio_sms import TwilioSmsChannel
from config import Settings

pytest_plugins = ["provider_fixtures"]


def settings(**values) -> Settings:
    return Settings(_env_file=None, environment="development", **values)  # type: ignore[call-arg]


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch):
    """Provider variables of the machine running the tests must not leak in."""
    for name in list(os.environ):
        if name.startswith(("LIFECYCLE_TWILIO", "LIFECYCLE_SENDGRID", "LIFECYCLE_FCM")) or (
            name.startswith("LIFECYCLE_") and name.endswith("_PROVIDER")
        ):
            monkeypatch.delenv(name)


def test_outbox_is_the_default_for_every_channel(sqlite_db):
    channels = compose.channels(settings(), sqlite_db.factory)

    assert set(channels) == {"sms", "email", "push"}
    assert all(isinstance(c, OutboxChannel) for c in channels.values())


def test_twilio_without_credentials_names_every_missing_variable():
    with pytest.raises(ValidationError) as caught:
        settings(sms_provider="twilio")

    message = str(caught.value)
    assert "LIFECYCLE_SMS_PROVIDER=twilio needs" in message
    assert "LIFECYCLE_TWILIO_ACCOUNT_SID" in message
    assert "LIFECYCLE_TWILIO_AUTH_TOKEN" in message
    assert "LIFECYCLE_TWILIO_FROM_NUMBER or LIFECYCLE_TWILIO_MESSAGING_SERVICE_SID" in message


def test_twilio_needs_a_sender():
    with pytest.raises(ValidationError, match="LIFECYCLE_TWILIO_FROM_NUMBER or"):
        settings(sms_provider="twilio", twilio_account_sid=TWILIO_SID, twilio_auth_token="t")


def test_sendgrid_without_a_key_names_it():
    with pytest.raises(ValidationError) as caught:
        settings(email_provider="sendgrid", sendgrid_from_email="hello@shop.example.com")

    assert "LIFECYCLE_EMAIL_PROVIDER=sendgrid needs LIFECYCLE_SENDGRID_API_KEY" in str(caught.value)
    assert "SENDGRID_FROM_EMAIL" not in str(caught.value)


def test_fcm_without_a_project_names_it(tmp_path):
    key_file = tmp_path / "sa.json"
    key_file.write_text("{}")

    with pytest.raises(ValidationError, match="needs LIFECYCLE_FCM_PROJECT_ID"):
        settings(push_provider="fcm", fcm_service_account_file=key_file)


def test_fcm_key_file_must_exist(tmp_path):
    with pytest.raises(ValidationError, match="LIFECYCLE_FCM_SERVICE_ACCOUNT_FILE: no file"):
        settings(
            push_provider="fcm",
            fcm_project_id=FCM_PROJECT,
            fcm_service_account_file=tmp_path / "missing.json",
        )


def test_unknown_provider_is_refused():
    with pytest.raises(ValidationError, match="sms_provider"):
        settings(sms_provider="aliyun")


def test_secrets_stay_out_of_the_settings_repr():
    configured = settings(
        sms_provider="twilio",
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token="very-secret-token",
        twilio_from_number="+15005550006",
        sendgrid_api_key="SG.very-secret-key",
    )

    assert "very-secret" not in repr(configured)
    assert "very-secret" not in str(configured.model_dump())


def test_providers_chosen_in_the_environment_are_built_and_send(
    monkeypatch,
    sqlite_db,
    twilio_server,
    sendgrid_server,
    fcm_server,
    service_account_file,
):
    environment = {
        "LIFECYCLE_SMS_PROVIDER": "twilio",
        "LIFECYCLE_TWILIO_ACCOUNT_SID": TWILIO_SID,
        "LIFECYCLE_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "LIFECYCLE_TWILIO_FROM_NUMBER": "+15005550006",
        "LIFECYCLE_TWILIO_STATUS_CALLBACK_URL": "https://hooks.example.com/twilio/status",
        "LIFECYCLE_TWILIO_BASE_URL": twilio_server.url,
        "LIFECYCLE_EMAIL_PROVIDER": "sendgrid",
        "LIFECYCLE_SENDGRID_API_KEY": SENDGRID_KEY,
        "LIFECYCLE_SENDGRID_FROM_EMAIL": "hello@shop.example.com",
        "LIFECYCLE_SENDGRID_FROM_NAME": "Shop",
        "LIFECYCLE_SENDGRID_ASM_GROUP_ID": "4242",
        "LIFECYCLE_SENDGRID_HOST": sendgrid_server.url,
        "LIFECYCLE_PUSH_PROVIDER": "fcm",
        "LIFECYCLE_FCM_PROJECT_ID": FCM_PROJECT,
        "LIFECYCLE_FCM_SERVICE_ACCOUNT_FILE": str(service_account_file),
        "LIFECYCLE_FCM_BASE_URL": fcm_server.url,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    channels = compose.channels(settings(), sqlite_db.factory)

    assert isinstance(channels["sms"], TwilioSmsChannel)
    assert isinstance(channels["email"], SendGridEmailChannel)
    assert isinstance(channels["push"], FcmPushChannel)
    assert channels["sms"].send(sms()).provider_message_id.startswith("SM")
    assert channels["email"].send(email()).provider_message_id == sendgrid_server.message_ids[-1]
    assert channels["push"].send(push()).provider_message_id.startswith("projects/")
    assert twilio_server.messages[-1].body["StatusCallback"] == (
        "https://hooks.example.com/twilio/status"
    )
    assert sendgrid_server.mails[-1].body["asm"] == {"group_id": 4242}
