"""The providers a channel kind can send through, each registered by its own module.

A provider names the settings it reads (a pydantic model whose fields are read from
``LIFECYCLE_<PROVIDER>_<FIELD>``), the ones it cannot work without, and how it builds its
sender from them. ``outbox`` (the local sink, the default for every kind) needs no settings
and is built by the worker around its store, so it is not listed here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, SecretStr

from channels.base import Channel


class ProviderSettings(BaseModel):
    """What every provider's settings carry besides its own fields.

    Attributes:
        timeout: Seconds to wait for the provider's answer (``LIFECYCLE_PROVIDER_TIMEOUT``).
        public_base_url: Where the provider's webhooks reach the API
            (``LIFECYCLE_PUBLIC_BASE_URL``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    timeout: float = 10.0
    public_base_url: str = "http://127.0.0.1:8000"


S = TypeVar("S", bound=ProviderSettings)


@dataclass(frozen=True)
class Provider(Generic[S]):
    """One provider: its settings, what it needs of them, and how its sender is built.

    Attributes:
        name: Its name in ``LIFECYCLE_<KIND>_PROVIDER`` and its settings' prefix.
        kinds: The channel kinds it can send.
        settings_model: Its settings, one field per ``LIFECYCLE_<NAME>_<FIELD>``.
        needs: Fields it cannot work without; each entry is met by any one of its fields.
        build: Its sender, from its settings.
        check: A problem its settings have beyond a missing field (a key file that is not
            there), as the refusal says it, or None.
        holds_early_statuses: Whether its sender is
            :class:`~channels.base.HoldsEarlyStatuses`: its webhook's early reports are held,
            and the ones never claimed are purged, for this provider.
    """

    name: str
    kinds: tuple[str, ...]
    settings_model: type[S]
    needs: tuple[tuple[str, ...], ...]
    build: Callable[[S], Channel]
    check: Callable[[S], str | None] | None = None
    holds_early_statuses: bool = False

    def env_name(self, field: str) -> str:
        """The environment variable a settings field is read from."""
        return f"LIFECYCLE_{self.name.upper()}_{field.upper()}"

    def missing(self, values: Mapping[str, object]) -> list[str]:
        """The needs ``values`` (field -> value) leave unmet, as the variables to set:
        ``["LIFECYCLE_TWILIO_FROM_NUMBER or LIFECYCLE_TWILIO_MESSAGING_SERVICE_SID"]``."""
        return [
            " or ".join(self.env_name(field) for field in fields)
            for fields in self.needs
            if not any(_is_set(values.get(field)) for field in fields)
        ]

    def settings(self, values: Mapping[str, Any]) -> S:
        """Its settings from ``values`` (its fields and the shared ones; others ignored)."""
        fields = self.settings_model.model_fields
        return self.settings_model.model_validate({k: v for k, v in values.items() if k in fields})


_PROVIDERS: dict[str, Provider[Any]] = {}


def register(provider: Provider[S]) -> Provider[S]:
    """List ``provider``; returns it, so its module can keep it as a constant.

    Raises:
        ValueError: Another provider already has its name.
    """
    if _PROVIDERS.get(provider.name, provider) is not provider:
        raise ValueError(f"provider {provider.name!r} is already registered")
    _PROVIDERS[provider.name] = provider
    return provider


def provider(name: str) -> Provider[Any] | None:
    """The provider named ``name``, or None (``outbox``, or a name nobody registered)."""
    return _PROVIDERS.get(name)


def all_providers() -> tuple[Provider[Any], ...]:
    """Every registered provider."""
    return tuple(_PROVIDERS.values())


def early_status_holders() -> tuple[str, ...]:
    """The providers whose senders hold early status reports, by name."""
    return tuple(p.name for p in _PROVIDERS.values() if p.holds_early_statuses)


def _is_set(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return bool(value)
