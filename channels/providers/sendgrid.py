"""SendGrid's settings and sender: email through ``channels.sendgrid_email``."""

from __future__ import annotations

from pydantic import SecretStr

from channels.base import Channel
from channels.providers.registry import Provider, ProviderSettings, register


class SendGridSettings(ProviderSettings):
    """``LIFECYCLE_SENDGRID_*``: the API key and the verified sender."""

    api_key: SecretStr
    from_email: str
    from_name: str | None = None
    reply_to: str | None = None
    asm_group_id: int | None = None
    host: str = "https://api.sendgrid.com"


def build(settings: SendGridSettings) -> Channel:
    """The SendGrid sender ``settings`` describe."""
    # Imported here: the SDK loads only in a process that sends through SendGrid.
    from channels.sendgrid_email import SendGridEmailChannel

    return SendGridEmailChannel(
        settings.api_key.get_secret_value(),
        from_email=settings.from_email,
        from_name=settings.from_name,
        reply_to=settings.reply_to,
        asm_group_id=settings.asm_group_id,
        host=settings.host,
        timeout=settings.timeout,
    )


SENDGRID = register(
    Provider(
        name="sendgrid",
        kinds=("email",),
        settings_model=SendGridSettings,
        needs=(("api_key",), ("from_email",)),
        build=build,
    )
)
