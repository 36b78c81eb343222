"""Firebase Cloud Messaging's settings and sender: push through ``channels.fcm_push``."""

from __future__ import annotations

from pathlib import Path

from channels.base import Channel
from channels.providers.registry import Provider, ProviderSettings, register


class FcmSettings(ProviderSettings):
    """``LIFECYCLE_FCM_*``: the Firebase project and the service account authorising it."""

    project_id: str
    service_account_file: Path
    base_url: str = "https://fcm.googleapis.com"


def build(settings: FcmSettings) -> Channel:
    """The FCM sender ``settings`` describe."""
    # Imported here: google-auth loads only in a process that sends through FCM.
    from channels.fcm_push import FcmPushChannel, ServiceAccountTokenProvider

    return FcmPushChannel(
        settings.project_id,
        token_provider=ServiceAccountTokenProvider(settings.service_account_file),
        base_url=settings.base_url,
        timeout=settings.timeout,
    )


def check(settings: FcmSettings) -> str | None:
    """The key file must be there: the first push would fail otherwise."""
    key_file = settings.service_account_file
    if not key_file.is_file():
        return f"LIFECYCLE_FCM_SERVICE_ACCOUNT_FILE: no file at {key_file}"
    return None


FCM = register(
    Provider(
        name="fcm",
        kinds=("push",),
        settings_model=FcmSettings,
        needs=(("project_id",), ("service_account_file",)),
        build=build,
        check=check,
    )
)
