"""Segment's HTTP tracking API, as data: payload models and their normalised form.

The platform (or any Segment client library) sends ``identify``, ``track``, ``page``,
``screen``, ``group`` and ``alias`` calls, one at a time or in a ``batch``. This module turns a
decoded JSON body into :class:`Message` values ready to store, or raises :class:`PayloadError`
naming the field at fault (``batch[2].userId``). Unknown fields are ignored, as Segment does.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError

MessageType = Literal["identify", "track", "page", "screen", "group", "alias"]
MESSAGE_TYPES: tuple[MessageType, ...] = ("identify", "track", "page", "screen", "group", "alias")

# Column widths in store.models: longer values would fail the insert on PostgreSQL.
_Id = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=255)]


class PayloadError(Exception):
    """A request the API refuses, with the HTTP status and the field at fault (if known)."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status

    def body(self) -> dict[str, str]:
        """The JSON error body: ``{"error": ..., "field": ...}``."""
        out = {"error": self.message}
        if self.field:
            out["field"] = self.field
        return out


def _parse_instant(value: Any) -> datetime | None:
    """An ISO-8601 string as an aware UTC datetime; a naive one is taken as UTC."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise PydanticCustomError("iso_datetime", "must be an ISO-8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PydanticCustomError(
            "iso_datetime", "must be an ISO-8601 date-time, e.g. 2024-05-01T10:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


Instant = Annotated[datetime | None, PlainValidator(_parse_instant)]
JSONObject = dict[str, Any] | None


class _Call(BaseModel):
    """Fields every call may carry. Extra fields are ignored, never fatal."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    user_id: _Id | None = Field(default=None, alias="userId")
    anonymous_id: _Id | None = Field(default=None, alias="anonymousId")
    message_id: _Id | None = Field(default=None, alias="messageId")
    context: JSONObject = None
    integrations: Any = None  # not used here; never a reason to refuse a call
    timestamp: Instant = None
    original_timestamp: Instant = Field(default=None, alias="originalTimestamp")
    sent_at: Instant = Field(default=None, alias="sentAt")


class TrackCall(_Call):
    event: _Id
    properties: JSONObject = None


class IdentifyCall(_Call):
    traits: JSONObject = None


class PageCall(_Call):
    """``page`` and ``screen``: stored with their ``name``, nothing acts on them yet."""

    name: Any = None
    properties: JSONObject = None


class GroupCall(_Call):
    group_id: Any = Field(default=None, alias="groupId")
    traits: JSONObject = None


class AliasCall(_Call):
    previous_id: Any = Field(default=None, alias="previousId")


_MODELS: dict[str, type[_Call]] = {
    "identify": IdentifyCall,
    "track": TrackCall,
    "page": PageCall,
    "screen": PageCall,
    "group": GroupCall,
    "alias": AliasCall,
}


class _BatchEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    batch: list[Any]
    context: JSONObject = None
    sent_at: Instant = Field(default=None, alias="sentAt")


@dataclass(frozen=True)
class Message:
    """One call, normalised: what the ``events`` row and the profile upsert need.

    ``timestamp`` is the event's instant after clock-skew correction; ``traits`` are the
    identify traits (empty for other calls). For ``identify`` and ``group`` the traits are also
    kept in ``properties``; ``page``/``screen`` store their name as ``event``; ``alias`` keeps
    ``previousId`` and ``group`` keeps ``groupId`` in ``properties``.
    """

    type: MessageType
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    event: str | None
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]
    timestamp: datetime
    received_at: datetime


def _phrase(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "string_type":
        return "must be a string"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "dict_type":
        return "must be a JSON object"
    if kind == "list_type":
        return "must be a JSON array"
    if kind == "iso_datetime":
        return str(err["msg"])
    return f"is invalid ({err['msg']})"


def _field_path(prefix: str, loc: tuple[Any, ...]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def _validate(model: type[BaseModel], data: Any, prefix: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        path = _field_path(prefix, tuple(err["loc"]))
        raise PayloadError(f"{path} {_phrase(err)}.", field=path) from None


def _deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``; nested objects are merged the same way."""
    out = dict(base)
    for key, value in top.items():
        below = out.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            out[key] = _deep_merge(below, value)
        else:
            out[key] = value
    return out


def event_time(
    *,
    timestamp: datetime | None,
    original_timestamp: datetime | None,
    sent_at: datetime | None,
    received_at: datetime,
) -> datetime:
    """When the event happened, corrected for the device's clock the way Segment does.

    A device clock that is off shifts both its ``timestamp`` and its ``sentAt`` by the same
    amount, so ``received_at - (sentAt - timestamp)`` is the event's time on our clock.
    """
    device_time = timestamp or original_timestamp
    if device_time is None:
        return received_at
    if sent_at is None:
        return device_time
    return received_at - (sent_at - device_time)


# What a call keeps in its ``events`` row, by attribute and by the name the client sent.
_STORED_FIELDS = {
    "user_id": "userId",
    "anonymous_id": "anonymousId",
    "message_id": "messageId",
    "event": "event",
    "name": "name",
    "properties": "properties",
    "traits": "traits",
    "context": "context",
    "group_id": "groupId",
    "previous_id": "previousId",
}


def _normalise(
    kind: MessageType,
    call: _Call,
    *,
    prefix: str,
    received_at: datetime,
    base_context: Mapping[str, Any] | None = None,
    base_sent_at: datetime | None = None,
    new_id: Callable[[], str],
) -> Message:
    if call.user_id is None and call.anonymous_id is None:
        path = _field_path(prefix, ("userId",))
        raise PayloadError(f"{path} or anonymousId is required.", field=path)
    try:
        ts = event_time(
            timestamp=call.timestamp,
            original_timestamp=call.original_timestamp,
            sent_at=call.sent_at or base_sent_at,
            received_at=received_at,
        )
    except OverflowError:
        path = _field_path(prefix, ("timestamp",))
        raise PayloadError(f"{path} is too far from sentAt.", field=path) from None
    _check_storable(
        {alias: getattr(call, name, None) for name, alias in _STORED_FIELDS.items()}, prefix
    )
    context = _deep_merge(base_context or {}, call.context or {})
    event: str | None = None
    properties: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    match call:
        case TrackCall():
            event, properties = call.event, dict(call.properties or {})
        case IdentifyCall():
            traits = dict(call.traits or {})
            properties = dict(traits)
        case PageCall():
            name = call.name if isinstance(call.name, str) and len(call.name) <= 255 else None
            event, properties = name or None, dict(call.properties or {})
        case GroupCall():
            properties = {"groupId": call.group_id, "traits": dict(call.traits or {})}
        case AliasCall():
            properties = {"previousId": call.previous_id}
    return Message(
        type=kind,
        message_id=call.message_id or new_id(),
        user_id=call.user_id,
        anonymous_id=call.anonymous_id,
        event=event,
        properties=properties,
        traits=traits,
        context=context,
        timestamp=ts,
        received_at=received_at,
    )


# U+0000 and lone surrogates: valid in JSON text, but PostgreSQL cannot store them.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _find_unstorable(value: Any, path: str) -> str | None:
    """Path of the first string (or key) in ``value`` that the database cannot store."""
    if isinstance(value, str):
        return path if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}"
            if _UNSTORABLE.search(key):
                return sub
            found = _find_unstorable(item, sub)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _find_unstorable(item, f"{path}[{i}]")
            if found:
                return found
    return None


def _check_storable(fields: Mapping[str, Any], prefix: str) -> None:
    for name, value in fields.items():
        path = _find_unstorable(value, _field_path(prefix, (name,)))
        if path:
            raise PayloadError(
                f"{path} contains a NUL character or an unpaired surrogate.", field=path
            )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(body: bytes) -> dict[str, Any]:
    """Parse a request body as a JSON object, or raise :class:`PayloadError` saying where."""
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"Body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None
    except UnicodeDecodeError:
        raise PayloadError("Body is not valid UTF-8 JSON.") from None
    except ValueError as exc:  # NaN / Infinity
        raise PayloadError(f"Body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise PayloadError("Body is not valid JSON: nested too deeply.") from None
    if not isinstance(data, dict):
        raise PayloadError("Body must be a JSON object.")
    return data


def parse_call(
    kind: MessageType,
    data: Mapping[str, Any],
    *,
    received_at: datetime,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> Message:
    """Validate one call posted to ``/v1/{kind}`` (the URL decides the type)."""
    call = _validate(_MODELS[kind], data, "")
    return _normalise(kind, call, prefix="", received_at=received_at, new_id=new_id)


def parse_batch(
    data: Mapping[str, Any],
    *,
    received_at: datetime,
    max_message_bytes: int | None = None,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> list[Message]:
    """Validate every message of a ``/v1/batch`` body; the first invalid one raises.

    The top-level ``context`` is merged under each message's own (the message wins) and the
    top-level ``sentAt`` applies to messages without their own.
    """
    envelope = _validate(_BatchEnvelope, data, "")
    _check_storable({"context": envelope.context}, "")
    out: list[Message] = []
    for i, item in enumerate(envelope.batch):
        prefix = f"batch[{i}]"
        if not isinstance(item, dict):
            raise PayloadError(f"{prefix} must be a JSON object.", field=prefix)
        if max_message_bytes is not None and _encoded_size(item) > max_message_bytes:
            raise PayloadError(
                f"{prefix} is larger than the {max_message_bytes // 1024} KB allowed per message.",
                field=prefix,
                status=413,
            )
        raw_type = item.get("type")
        kind = raw_type.lower() if isinstance(raw_type, str) else None
        if kind not in _MODELS:
            path = f"{prefix}.type"
            if raw_type is None:
                raise PayloadError(f"{path} is required.", field=path)
            raise PayloadError(f"{path} must be one of {', '.join(MESSAGE_TYPES)}.", field=path)
        call = _validate(_MODELS[kind], item, prefix)
        out.append(
            _normalise(
                kind,  # type: ignore[arg-type]
                call,
                prefix=prefix,
                received_at=received_at,
                base_context=envelope.context,
                base_sent_at=envelope.sent_at,
                new_id=new_id,
            )
        )
    return out


def _encoded_size(item: Any) -> int:
    return len(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode())


__all__ = [
    "MESSAGE_TYPES",
    "Message",
    "MessageType",
    "PayloadError",
    "decode_json",
    "event_time",
    "parse_batch",
    "parse_call",
]
