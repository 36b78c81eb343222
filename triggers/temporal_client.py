"""The Temporal client every process uses, and the one data converter every client, worker
and test environment shares: pydantic (specs hold timedeltas), plus encryption of every
payload when ``LIFECYCLE_PAYLOAD_KEYS`` is set (see ``triggers/payload_codec.py``)."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime

from config import Settings
from triggers.payload_codec import EncryptionCodec, parse_payload_keys


def data_converter(settings: Settings) -> DataConverter:
    """The pydantic data converter, encrypting payloads under ``settings.payload_keys``
    (newest first) when any are set; plain when not."""
    if settings.payload_keys is None:
        return pydantic_data_converter
    keys = parse_payload_keys(settings.payload_keys.get_secret_value())
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keys))


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
