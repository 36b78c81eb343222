"""With LIFECYCLE_PAYLOAD_KEYS set, Temporal histories hold ciphertext: a client without the
keys sees no user id or property; one with them (or with the keys rotated) reads the run."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from google.protobuf.message import Message as Proto
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from config import Settings
from journey_support import add_user, at_rest, publish_shipped, router_for, store_event, user_in
from triggers.payload_codec import EncryptionCodec, PayloadKeyError, parse_payload_keys
from triggers.temporal_client import data_converter, shared_cache_data_converter
from worker import running_worker
from workflows.contracts import JourneyInput
from workflows.ids import journey_workflow_id

OLD = base64.b64encode(os.urandom(32)).decode()
NEW = base64.b64encode(os.urandom(32)).decode()


def settings(keys: str | None) -> Settings:
    return Settings(environment="development", payload_keys=keys)  # type: ignore[arg-type]


def payloads_of(message: Proto) -> Iterator[Payload]:
    """Every payload anywhere in a history event (inputs, signals, activity arguments,
    results, failures' details)."""
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            items = list(value.values())  # e.g. a header's fields: name -> payload
        elif isinstance(value, Proto):
            items = [value]
        else:
            items = list(value)
        for item in items:
            if isinstance(item, Payload):
                yield item
            elif isinstance(item, Proto):
                yield from payloads_of(item)


# --- the key list -------------------------------------------------------------------------------


def test_keys_are_read_newest_first():
    keys = parse_payload_keys(f"k2:{NEW}, k1:{OLD}")
    assert [key_id for key_id, _ in keys] == ["k2", "k1"]
    assert keys[0][1] == base64.b64decode(NEW)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (NEW, "payload key 1 is not written id:base64key"),
        ("k1:not base64!", "payload key 'k1' is not base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "payload key 'k1' is 5 bytes"),
        (f"k1:{NEW},k1:{OLD}", "payload key id 'k1' is given twice"),
    ],
)
def test_a_bad_key_list_is_refused_naming_the_entry_not_the_key(text, message):
    with pytest.raises(PayloadKeyError, match=message):
        parse_payload_keys(text)
    with pytest.raises(ValidationError) as caught:
        settings(text)
    # What `lifecycle` prints: the message, which names the entry and never the key.
    printed = caught.value.errors()[0]["msg"]
    assert message in printed
    assert NEW not in printed and OLD not in printed


def test_no_keys_no_encryption():
    assert settings(None).payload_keys is None
    assert settings("").payload_keys is None
    plain = data_converter(settings(None))
    assert plain is shared_cache_data_converter and plain.payload_codec is None
    converter = data_converter(settings(f"k1:{OLD}"))
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert converter.payload_converter_class is plain.payload_converter_class


def test_shared_cache_converter_speaks_the_pydantic_converters_format():
    """Clients, workers and histories recorded with Temporal's pydantic converter and ours
    read each other's payloads: the cache changes nothing on the wire."""
    from journeys.validate import load_journey, shipped_journey_files
    from workflows.contracts import EventSignal

    path = next(p for p in shipped_journey_files() if p.stem == "new_user_coupon")
    now = datetime.now(UTC)
    inp = JourneyInput(
        journey=load_journey(path),
        journey_version=1,
        enrollment_id=7,
        user_id="u-1",
        group="treatment",
        trigger=EventSignal("m-1", "user_signed_up", now, {"channel": "app"}),
    )
    ours = shared_cache_data_converter.payload_converter
    theirs = pydantic_data_converter.payload_converter
    assert ours.to_payloads([inp]) == theirs.to_payloads([inp])
    assert ours.from_payloads(theirs.to_payloads([inp]), [JourneyInput]) == [inp]
    # A second converter (each workflow run builds its own) decodes the same.
    again = shared_cache_data_converter.payload_converter_class()
    assert again.from_payloads(ours.to_payloads([inp]), [JourneyInput]) == [inp]


# --- the codec ----------------------------------------------------------------------------------


async def test_encrypted_payloads_decrypt_under_any_listed_key():
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"user_id":"u-1"}')
    old = EncryptionCodec(parse_payload_keys(f"k1:{OLD}"))
    [sealed] = await old.encode([plain])
    assert b"u-1" not in sealed.SerializeToString()
    assert sealed.metadata["encryption-key-id"] == b"k1"
    assert await old.decode([sealed]) == [plain]
    rotated = EncryptionCodec(parse_payload_keys(f"k2:{NEW},k1:{OLD}"))
    assert await rotated.decode([sealed]) == [plain]
    [resealed] = await rotated.encode([plain])
    assert resealed.metadata["encryption-key-id"] == b"k2"
    # Payloads written before encryption was turned on still read.
    assert await rotated.decode([plain]) == [plain]
    with pytest.raises(PayloadKeyError, match="does not list"):
        await EncryptionCodec(parse_payload_keys(f"k2:{NEW}")).decode([sealed])
    forged = parse_payload_keys(f"k1:{NEW}")
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        await EncryptionCodec(forged).decode([sealed])


# --- a journey on the dev server ----------------------------------------------------------------


async def connect_like(env: Any, keys: str | None) -> Client:
    return await Client.connect(
        env.client.service_client.config.target_host,
        namespace=env.client.namespace,
        data_converter=data_converter(settings(keys)),
    )


async def test_a_run_on_the_dev_server_is_stored_encrypted(dev_env, sqlite_db, task_queue):
    db = sqlite_db
    user = user_in("treatment", f"enc-{task_queue}", "cart_abandonment")
    client = await connect_like(dev_env, f"k1:{OLD}")
    env = SimpleNamespace(client=client)
    async with running_worker(client, settings(f"k1:{OLD}"), db.factory, task_queue=task_queue):
        now = datetime.now(UTC)
        publish_shipped(db.factory, "cart_abandonment", now)
        add_user(db.factory, user, now)
        router = router_for(env, db, task_queue)
        props = {"cart_id": "cart-secret-9", "low_stock": True}
        await router.route([store_event(db.factory, user, "cart_updated", now, properties=props)])
        await at_rest(env, db.factory, user)

    wid = journey_workflow_id("cart_abandonment", user, "cart-secret-9")
    # Without the keys: every payload is ciphertext; no user id, no property.
    plain = await dev_env.client.get_workflow_handle(wid).fetch_history()
    found = [p for event in plain.events for p in payloads_of(event)]
    assert found
    for payload in found:
        assert payload.metadata["encoding"] == b"binary/encrypted"
        assert user.encode() not in payload.data
        assert b"cart-secret-9" not in payload.data
    started = plain.events[0].workflow_execution_started_event_attributes.input.payloads
    # With them, and with the keys rotated (new first, old still listed): the run's input.
    for keys in (f"k1:{OLD}", f"k2:{NEW},k1:{OLD}"):
        reader = await connect_like(dev_env, keys)
        [inp] = await reader.data_converter.decode(list(started), [JourneyInput])
        assert inp.user_id == user
        assert inp.trigger.properties == {"cart_id": "cart-secret-9", "low_stock": True}
    new_only = await connect_like(dev_env, f"k2:{NEW}")
    with pytest.raises(PayloadKeyError):
        await new_only.data_converter.decode(list(started), [JourneyInput])
    await dev_env.client.get_workflow_handle(wid).terminate(reason="test over")
