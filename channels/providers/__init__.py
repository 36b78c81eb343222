"""Providers register themselves here: their settings, what they need, how each is built.

Each module (``twilio``, ``sendgrid``, ``fcm``) imports only pydantic: settings are read in
every process, the provider's SDK only where its sender is built.
"""

from channels.providers import fcm, sendgrid, twilio  # noqa: F401 - each registers itself
from channels.providers.registry import (
    Provider,
    ProviderSettings,
    all_providers,
    early_status_holders,
    provider,
    register,
)

__all__ = [
    "Provider",
    "ProviderSettings",
    "all_providers",
    "early_status_holders",
    "provider",
    "register",
]
