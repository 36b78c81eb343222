"""Encrypted Temporal payloads: what workflow histories hold is ciphertext.

Temporal stores every workflow input, signal, activity argument and result in its history, in
plain text. With ``LIFECYCLE_PAYLOAD_KEYS`` set, every payload is encrypted with AES-GCM
before it leaves the process and decrypted when it comes back (Temporal's documented
``PayloadCodec`` pattern). The key id travels in the payload's metadata, so keys rotate: new
payloads use the first (newest) key, and a payload written under any listed key still reads.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_SIZES = (16, 24, 32)  # AES-128, AES-192, AES-256


class PayloadKeyError(ValueError):
    """A key list that cannot be used, or a payload no listed key opens."""


def parse_payload_keys(text: str) -> list[tuple[str, bytes]]:
    """``"id:base64key,id2:base64key"`` (newest first) as ``[(id, key), ...]``.

    Raises:
        PayloadKeyError: naming the entry that is not ``id:key``, a key that is not base64
            of 16, 24 or 32 bytes, or an id given twice (never the key itself).
    """
    keys: list[tuple[str, bytes]] = []
    for number, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id:
            raise PayloadKeyError(f"payload key {number} is not written id:base64key")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise PayloadKeyError(f"payload key {key_id!r} is not base64") from None
        if len(key) not in KEY_SIZES:
            raise PayloadKeyError(
                f"payload key {key_id!r} is {len(key)} bytes; AES-GCM takes 16, 24 or 32 "
                "(e.g. `openssl rand -base64 32`)"
            )
        if any(key_id == seen for seen, _ in keys):
            raise PayloadKeyError(f"payload key id {key_id!r} is given twice")
        keys.append((key_id, key))
    if not keys:
        raise PayloadKeyError("no payload key given")
    return keys


class EncryptionCodec(PayloadCodec):
    """AES-GCM over whole serialized payloads (metadata included, so the encoding a payload
    had is hidden too); the first key encrypts, every key decrypts by its id."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise PayloadKeyError("no payload key given")
        self._current = keys[0][0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}

    async def encode(self, payloads: Iterable[Payload]) -> list[Payload]:
        cipher = self._ciphers[self._current]
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            data = nonce + cipher.encrypt(nonce, payload.SerializeToString(), None)
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID: self._current.encode()},
                    data=data,
                )
            )
        return encoded

    async def decode(self, payloads: Iterable[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)  # written before encryption was turned on
                continue
            key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise PayloadKeyError(
                    f"payload encrypted with key {key_id!r}, which LIFECYCLE_PAYLOAD_KEYS "
                    "does not list (keep old keys listed, after the new one, while runs "
                    "written with them may be read)"
                )
            nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
            try:
                plain = cipher.decrypt(nonce, sealed, None)
            except InvalidTag:
                raise PayloadKeyError(
                    f"payload under key {key_id!r} does not decrypt: wrong key or altered data"
                ) from None
            decoded.append(Payload.FromString(plain))
        return decoded
