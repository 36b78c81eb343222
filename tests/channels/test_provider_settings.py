"""Each provider owns its settings and builds its sender from them: the settings are read from
the same LIFECYCLE_<PROVIDER>_* variables, and what a sender can do besides sending is a
protocol asked with isinstance."""

from __future__ import annotations

import typing

import pytest
from channel_support import sms
from provider_servers import FCM_PROJECT, SENDGRID_KEY, TWILIO_SID, TWILIO_TOKEN

from channels.base import FindsSent, HoldsEarlyStatuses
from channels.fcm_push import FcmPushChannel
from channels.providers import all_providers, provider
from channels.providers.fcm import FcmSettings
from channels.providers.sendgrid import SendGridSettings
from channels.providers.twilio import TwilioSettings
from channels.sendgrid_email import SendGridEmailChannel
from channels.twilio_sms import TwilioSmsChannel
from config import Settings
from kinds import is_kind, names

pytest_plugins = ["provider_fixtures"]


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch):
    """The providers' variables of the machine running the tests must not leak in."""
    for registered in all_providers():
        for field in registered.settings_model.model_fields:
            monkeypatch.delenv(registered.env_name(field), raising=False)
    for kind_name in names():
        monkeypatch.delenv(f"LIFECYCLE_{kind_name.upper()}_PROVIDER", raising=False)


def settings() -> Settings:
    return Settings(_env_file=None, environment="development")  # type: ignore[call-arg]


def test_every_provider_field_is_read_from_the_variable_users_set():
    flat = Settings.model_fields
    for registered in all_providers():
        own = set(registered.settings_model.model_fields) - {"timeout", "public_base_url"}
        assert own, registered.name
        for field in own:
            assert f"{registered.name}_{field}" in flat, registered.env_name(field)


def test_every_provider_sends_a_kind_and_can_be_chosen_for_it():
    for registered in all_providers():
        for kind_name in registered.kinds:
            assert is_kind(kind_name)
            choices = typing.get_args(Settings.model_fields[f"{kind_name}_provider"].annotation)
            assert registered.name in choices, f"LIFECYCLE_{kind_name.upper()}_PROVIDER"


def test_twilio_settings_come_from_its_variables(monkeypatch):
    monkeypatch.setenv("LIFECYCLE_SMS_PROVIDER", "twilio")
    monkeypatch.setenv("LIFECYCLE_TWILIO_ACCOUNT_SID", TWILIO_SID)
    monkeypatch.setenv("LIFECYCLE_TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    monkeypatch.setenv("LIFECYCLE_TWILIO_MESSAGING_SERVICE_SID", "MG123")
    monkeypatch.setenv("LIFECYCLE_TWILIO_VALIDITY_PERIOD", "600")
    monkeypatch.setenv("LIFECYCLE_PROVIDER_TIMEOUT", "3.5")
    monkeypatch.setenv("LIFECYCLE_PUBLIC_BASE_URL", "http://127.0.0.1:9000/")

    twilio = settings().provider_settings("twilio")

    assert isinstance(twilio, TwilioSettings)
    assert (twilio.account_sid, twilio.auth_token.get_secret_value()) == (TWILIO_SID, TWILIO_TOKEN)
    assert (twilio.from_number, twilio.messaging_service_sid) == (None, "MG123")
    assert (twilio.validity_period, twilio.timeout) == (600, 3.5)
    # No callback set: Twilio reports statuses to the API's own webhook.
    assert twilio.status_callback == "http://127.0.0.1:9000/webhooks/twilio/status"


def test_sendgrid_and_fcm_settings_come_from_their_variables(monkeypatch, service_account_file):
    monkeypatch.setenv("LIFECYCLE_SENDGRID_API_KEY", SENDGRID_KEY)
    monkeypatch.setenv("LIFECYCLE_SENDGRID_FROM_EMAIL", "hello@shop.example.com")
    monkeypatch.setenv("LIFECYCLE_SENDGRID_ASM_GROUP_ID", "4242")
    monkeypatch.setenv("LIFECYCLE_FCM_PROJECT_ID", FCM_PROJECT)
    monkeypatch.setenv("LIFECYCLE_FCM_SERVICE_ACCOUNT_FILE", str(service_account_file))
    configured = settings()

    sendgrid = configured.provider_settings("sendgrid")
    fcm = configured.provider_settings("fcm")

    assert isinstance(sendgrid, SendGridSettings) and isinstance(fcm, FcmSettings)
    assert (sendgrid.from_email, sendgrid.asm_group_id) == ("hello@shop.example.com", 4242)
    assert sendgrid.host == "https://api.sendgrid.com"
    assert (fcm.project_id, fcm.service_account_file) == (FCM_PROJECT, service_account_file)


def test_the_outbox_has_no_provider_settings():
    assert provider("outbox") is None
    with pytest.raises(KeyError, match="outbox"):
        settings().provider_settings("outbox")


def test_each_provider_builds_its_sender_and_says_what_else_it_can_do(
    twilio_server, service_account_file
):
    twilio = provider("twilio")
    sendgrid = provider("sendgrid")
    fcm = provider("fcm")
    assert twilio and sendgrid and fcm

    sms_sender = twilio.build(
        TwilioSettings(
            account_sid=TWILIO_SID,
            auth_token=TWILIO_TOKEN,
            from_number="+15005550006",
            base_url=twilio_server.url,
        )
    )
    email_sender = sendgrid.build(
        SendGridSettings(api_key=SENDGRID_KEY, from_email="hello@shop.example.com")
    )
    push_sender = fcm.build(
        FcmSettings(project_id=FCM_PROJECT, service_account_file=service_account_file)
    )

    assert isinstance(sms_sender, TwilioSmsChannel)
    assert isinstance(email_sender, SendGridEmailChannel)
    assert isinstance(push_sender, FcmPushChannel)
    assert isinstance(sms_sender, FindsSent) and isinstance(sms_sender, HoldsEarlyStatuses)
    assert not isinstance(email_sender, FindsSent | HoldsEarlyStatuses)
    assert not isinstance(push_sender, FindsSent | HoldsEarlyStatuses)
    assert sms_sender.send(sms()).provider_message_id.startswith("SM")
    assert twilio_server.messages[-1].body["StatusCallback"] == (
        "http://127.0.0.1:8000/webhooks/twilio/status"
    )
