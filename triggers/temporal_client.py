"""The Temporal client every process uses, and the one data converter every client, worker
and test environment shares: pydantic (specs hold timedeltas), plus encryption of every
payload when ``LIFECYCLE_PAYLOAD_KEYS`` is set (see ``triggers/payload_codec.py``)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from pydantic import TypeAdapter
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, PydanticPayloadConverter
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime

from config import Settings
from triggers.payload_codec import EncryptionCodec, parse_payload_keys


@functools.lru_cache(maxsize=1024)
def _type_adapter(type_hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(type_hint)


class SharedCachePayloadConverter(PydanticPayloadConverter):
    """Temporal's pydantic payload converter, its type adapters cached once per process.

    The SDK caches them per converter instance, and every workflow run (each sandbox) builds
    instances of its own: every run built the schemas of its input, signals and activity
    results again (a fifth of the worker's CPU in ``bench/journeys.py``'s profile). The
    wire format is the pydantic converter's: either reads what the other wrote.
    """

    def __init__(self) -> None:
        super().__init__(max_cached_type_adapters=0)
        for converter in self.converters.values():
            if isinstance(converter, PydanticJSONPlainPayloadConverter):
                converter._type_adapter = _type_adapter  # type: ignore[assignment]


shared_cache_data_converter = DataConverter(payload_converter_class=SharedCachePayloadConverter)


def data_converter(settings: Settings) -> DataConverter:
    """The pydantic data converter (type adapters cached per process), encrypting payloads
    under ``settings.payload_keys`` (newest first) when any are set; plain when not."""
    if settings.payload_keys is None:
        return shared_cache_data_converter
    keys = parse_payload_keys(settings.payload_keys.get_secret_value())
    return dataclasses.replace(shared_cache_data_converter, payload_codec=EncryptionCodec(keys))


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """Connect to ``settings.temporal_address`` / ``settings.temporal_namespace``, on
    ``runtime`` when given (e.g. one serving Prometheus metrics), else the default one.
    Workers built on the client use its data converter."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        runtime=runtime,
    )
