"""Twilio's settings and sender: SMS through ``channels.twilio_sms``."""

from __future__ import annotations

from pydantic import Field, SecretStr

from channels.base import Channel
from channels.providers.registry import Provider, ProviderSettings, register


class TwilioSettings(ProviderSettings):
    """``LIFECYCLE_TWILIO_*``: the account and a sender, a number or a Messaging Service."""

    account_sid: str
    auth_token: SecretStr
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback_url: str | None = None
    validity_period: int | None = Field(default=None, ge=1, le=36000)
    base_url: str | None = None  # None: Twilio itself

    @property
    def status_callback(self) -> str:
        """Where Twilio posts status changes: as set, or the API's Twilio webhook."""
        return self.status_callback_url or f"{self.public_base_url}/webhooks/twilio/status"


def build(settings: TwilioSettings) -> Channel:
    """The Twilio sender ``settings`` describe."""
    # Imported here: the SDK loads only in a process that sends through Twilio.
    from channels.twilio_sms import TwilioSmsChannel

    return TwilioSmsChannel(
        settings.account_sid,
        settings.auth_token.get_secret_value(),
        from_number=settings.from_number,
        messaging_service_sid=settings.messaging_service_sid,
        status_callback=settings.status_callback,
        validity_period=settings.validity_period,
        base_url=settings.base_url,
        timeout=settings.timeout,
    )


TWILIO = register(
    Provider(
        name="twilio",
        kinds=("sms",),
        settings_model=TwilioSettings,
        needs=(("account_sid",), ("auth_token",), ("from_number", "messaging_service_sid")),
        build=build,
        # A status callback can beat the sid's storing (``TwilioSmsChannel``).
        holds_early_statuses=True,
    )
)
