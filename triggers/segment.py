"""Segment's HTTP tracking API, as data: payload models and their normalised form.

The platform (or any Segment client library) sends ``identify``, ``track``, ``page``,
``screen``, ``group`` and ``alias`` calls, one at a time or in a ``batch``. This module turns a
decoded JSON body into :class:`Message` values ready to store. A batch is judged item by item:
a refused item becomes a :class:`Refusal` (its raw JSON, the field at fault such as
``batch[2].userId``, the reason) and the others are kept. A single call that is refused raises
:class:`PayloadError`. Unknown fields are ignored, as Segment does.

Every call is bounded at the edge (:class:`Limits`): its size, how deep ``properties``,
``traits`` and ``context`` nest, finite numbers only, no NUL or unpaired surrogate in what is
stored. An event time ahead of the receive time by more than ``max_future_skew``, or before
``earliest``, is replaced by the receive time and flagged in ``context.timestampReplaced``.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
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
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00, 9999-12-31T23:59-01:00: off the calendar
        return _FAR_PAST if parsed.year == 1 else _FAR_FUTURE


_FAR_PAST = datetime.min.replace(tzinfo=UTC)
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)

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
    if not base:
        return dict(top)
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
    Raises ``OverflowError`` when the correction leaves the calendar.
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


@dataclass(frozen=True)
class Limits:
    """What the API accepts per call (see ``Settings`` for the defaults and their reasons)."""

    max_message_bytes: int | None = 32 * 1024
    max_depth: int = 32
    max_future_skew: timedelta = timedelta(hours=1)
    earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Refusal:
    """One call the API refused: kept raw, with the field at fault and why."""

    index: int | None  # position in the batch; None for a single call
    message_id: str | None
    field: str | None
    reason: str
    raw: str  # the call as ASCII JSON: storable whatever it contains

    def body(self) -> dict[str, Any]:
        """The entry in the API's ``refused`` list."""
        out: dict[str, Any] = {"index": self.index, "messageId": self.message_id}
        if self.field:
            out["field"] = self.field
        out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class Parsed:
    """A batch judged item by item: the calls to store and the ones refused."""

    messages: list[Message] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def raw_json(value: Any) -> str:
    """``value`` as ASCII JSON: lone surrogates and NUL escaped, ``Infinity`` kept as sent."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True, separators=(",", ":"))


def _checked_time(
    call: _Call,
    data: Mapping[str, Any],
    *,
    base_sent_at: datetime | None,
    received_at: datetime,
    limits: Limits,
) -> tuple[datetime, dict[str, Any] | None]:
    """The event's time, and the flag to keep in its context when it had to be replaced."""
    sent_at = call.sent_at or base_sent_at
    try:
        ts = event_time(
            timestamp=call.timestamp,
            original_timestamp=call.original_timestamp,
            sent_at=sent_at,
            received_at=received_at,
        )
    except OverflowError:  # the skew correction left the calendar, one way or the other
        device_time = call.timestamp or call.original_timestamp
        assert sent_at is not None and device_time is not None
        ts = _FAR_PAST if sent_at > device_time else _FAR_FUTURE
    if ts > received_at + limits.max_future_skew:
        why = f"more than {limits.max_future_skew} ahead of the time it was received"
    elif ts < limits.earliest:
        why = f"before {limits.earliest.date().isoformat()}"
    else:
        return ts, None
    sent = {
        name: data[name]
        for name in ("timestamp", "originalTimestamp", "sentAt")
        if isinstance(data.get(name), str)
    }
    return received_at, {"reason": f"the event time was {why}", **sent}


def _normalise(
    kind: MessageType,
    call: _Call,
    data: Mapping[str, Any],
    *,
    prefix: str,
    received_at: datetime,
    limits: Limits,
    base_context: Mapping[str, Any] | None = None,
    base_sent_at: datetime | None = None,
    new_id: Callable[[], str],
) -> Message:
    if call.user_id is None and call.anonymous_id is None:
        path = _field_path(prefix, ("userId",))
        raise PayloadError(f"{path} or anonymousId is required.", field=path)
    ts, replaced = _checked_time(
        call, data, base_sent_at=base_sent_at, received_at=received_at, limits=limits
    )
    context = _deep_merge(base_context or {}, call.context or {})
    if replaced is not None:
        context["timestampReplaced"] = replaced
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


def _printable(key: str) -> str:
    """A key as it can appear in an error: unstorable characters written as escapes."""
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", key)


def _shape_problem(
    value: Any, path: str, depth: int, limits: Limits, *, text: bool = True
) -> tuple[str, str] | None:
    """The first place in ``value`` the store or a run could not take, and why.

    ``depth`` counts the objects and arrays around ``value`` (the field itself is at 1 when it
    is an object). Checked before anything is stored, so nothing that passes can later fail
    in a JSON column, a payload converter or an SQL function. ``text=False`` skips the search
    for unstorable characters, for a body known to hold none (see :func:`may_hold_unstorable`).
    """
    found = _first_problem(value, depth, limits, text)
    if found is None:
        return None
    where, why = found
    for part in reversed(where):
        path += f"[{part}]" if isinstance(part, int) else f".{_printable(part)}"
    return path, why


def _first_problem(
    value: Any, depth: int, limits: Limits, text: bool
) -> tuple[list[str | int], str] | None:
    """:func:`_shape_problem`'s walk; the path comes back innermost part first, built only
    for a value that fails."""
    if isinstance(value, str):
        if text and _UNSTORABLE.search(value):
            return [], "contains a NUL character or an unpaired surrogate"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else ([], "must be a finite number")
    if isinstance(value, dict):
        if depth >= limits.max_depth:
            return [], f"nests deeper than {limits.max_depth} levels"
        for key, item in value.items():
            if text and _UNSTORABLE.search(key):
                return [key], "has a key with a NUL character or an unpaired surrogate"
            if isinstance(item, dict | list | float) or (text and isinstance(item, str)):
                found = _first_problem(item, depth + 1, limits, text)
                if found:
                    found[0].append(key)
                    return found
    elif isinstance(value, list):
        if depth >= limits.max_depth:
            return [], f"nests deeper than {limits.max_depth} levels"
        for i, item in enumerate(value):
            if isinstance(item, dict | list | float) or (text and isinstance(item, str)):
                found = _first_problem(item, depth + 1, limits, text)
                if found:
                    found[0].append(i)
                    return found
    return None


# A NUL or a lone surrogate reaches a decoded string only through a ``\u`` escape (0000,
# D800-DFFF) or as bytes a strict UTF-8 decoder refuses but ``json`` lets through (ED A0-BF).
_MAY_BE_UNSTORABLE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]")


def may_hold_unstorable(body: bytes) -> bool:
    """Whether a JSON ``body`` could decode to a string with a NUL or a lone surrogate."""
    return _MAY_BE_UNSTORABLE.search(body) is not None


def shape_problem(value: Any, path: str, limits: Limits = DEFAULT_LIMITS) -> tuple[str, str] | None:
    """Where ``value`` (a decoded JSON document) breaks the edge's bounds and why, or None:
    too deep, not finite, or text the database cannot store."""
    return _shape_problem(value, path, 0, limits)


def _check_shape(data: Mapping[str, Any], prefix: str, limits: Limits, text: bool = True) -> None:
    """Refuse a call whose stored fields are too deep, not finite or not storable."""
    for name in _STORED_FIELDS.values():
        value = data.get(name)
        if isinstance(value, dict | list | float) or (text and isinstance(value, str)):
            found = _shape_problem(value, "", 0, limits, text=text)
            if found:
                path = _field_path(prefix, (name,)) + found[0]
                raise PayloadError(f"{path} {found[1]}.", field=path)


# 19 digits in a row may be an integer beyond 64 bits (or text that merely looks like one).
_LONG_INTEGER = re.compile(rb"[0-9]{19}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(body: bytes) -> dict[str, Any]:
    """Parse a request body as a JSON object, or raise :class:`PayloadError` saying where.

    ``NaN``/``Infinity`` are not JSON and refuse the body; a number too large for a double
    (``1e400``) decodes as infinity and is refused per call by the shape check.

    Most bodies go through orjson; one it cannot read as ``json`` would (another encoding
    than UTF-8, a lone surrogate, a number out of a double's range, an integer longer than
    18 digits, which orjson would turn into a float) goes through ``json``, which decides.
    """
    if _LONG_INTEGER.search(body) is None:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            if not isinstance(data, dict):
                raise PayloadError("Body must be a JSON object.")
            return data
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


def _parse_item(
    kind: MessageType,
    data: Mapping[str, Any],
    *,
    prefix: str,
    received_at: datetime,
    limits: Limits,
    new_id: Callable[[], str],
    base_context: Mapping[str, Any] | None = None,
    base_sent_at: datetime | None = None,
    text: bool = True,
) -> Message:
    _check_shape(data, prefix, limits, text)
    call = _validate(_MODELS[kind], data, prefix)
    return _normalise(
        kind,
        call,
        data,
        prefix=prefix,
        received_at=received_at,
        limits=limits,
        base_context=base_context,
        base_sent_at=base_sent_at,
        new_id=new_id,
    )


def parse_call(
    kind: MessageType,
    data: Mapping[str, Any],
    *,
    received_at: datetime,
    limits: Limits = DEFAULT_LIMITS,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    check_text: bool = True,
) -> Message:
    """Validate one call posted to ``/v1/{kind}`` (the URL decides the type).
    ``check_text=False`` skips the search for NUL and lone surrogates, for a body
    :func:`may_hold_unstorable` cleared.

    Raises:
        PayloadError: naming the field at fault.
    """
    return _parse_item(
        kind,
        data,
        prefix="",
        received_at=received_at,
        limits=limits,
        new_id=new_id,
        text=check_text,
    )


def refusal(data: Any, exc: PayloadError, *, index: int | None = None) -> Refusal:
    """What to keep of a refused call: its raw JSON, its ``messageId`` if it had a usable one."""
    message_id = data.get("messageId") if isinstance(data, dict) else None
    if not isinstance(message_id, str) or _UNSTORABLE.search(message_id) or len(message_id) > 255:
        message_id = None
    return Refusal(
        index=index, message_id=message_id, field=exc.field, reason=exc.message, raw=raw_json(data)
    )


def parse_batch(
    data: Mapping[str, Any],
    *,
    received_at: datetime,
    limits: Limits = DEFAULT_LIMITS,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    check_text: bool = True,
) -> Parsed:
    """Judge every call of a ``/v1/batch`` body on its own.

    The top-level ``context`` is merged under each message's own (the message wins) and the
    top-level ``sentAt`` applies to messages without their own. ``check_text=False`` skips
    the search for NUL and lone surrogates, for a body :func:`may_hold_unstorable` cleared.

    Raises:
        PayloadError: only when the body itself is wrong (no ``batch`` array, a top-level
            ``context`` that no call could be stored with).
    """
    envelope = _validate(_BatchEnvelope, data, "")
    if "context" in data:
        found = _shape_problem(data["context"], "context", 0, limits)
        if found:
            path, why = found
            raise PayloadError(f"{path} {why}.", field=path)
    out = Parsed()
    for i, item in enumerate(envelope.batch):
        try:
            out.messages.append(
                _batch_item(i, item, envelope, received_at, limits, new_id, check_text)
            )
        except PayloadError as exc:
            out.refused.append(refusal(_with_envelope(item, data), exc, index=i))
    return out


def _with_envelope(item: Any, data: Mapping[str, Any]) -> Any:
    """A batch item with what it took from the envelope (``sentAt``, ``context``), so that
    a replay of the item alone is judged and timed as it was in its batch."""
    if not isinstance(item, dict):
        return item
    out = dict(item)
    if "sentAt" in data and "sentAt" not in out:
        out["sentAt"] = data["sentAt"]
    base, own = data.get("context"), out.get("context", {})
    if isinstance(base, dict) and isinstance(own, dict):
        out["context"] = _deep_merge(base, own)
    return out


def _batch_item(
    i: int,
    item: Any,
    envelope: _BatchEnvelope,
    received_at: datetime,
    limits: Limits,
    new_id: Callable[[], str],
    text: bool,
) -> Message:
    prefix = f"batch[{i}]"
    if not isinstance(item, dict):
        raise PayloadError(f"{prefix} must be a JSON object.", field=prefix)
    limit = limits.max_message_bytes
    if limit is not None and _encoded_size(item) > limit:
        raise PayloadError(
            f"{prefix} is larger than the {limit // 1024} KB allowed per message.", field=prefix
        )
    raw_type = item.get("type")
    kind = raw_type.lower() if isinstance(raw_type, str) else None
    if kind not in _MODELS:
        path = f"{prefix}.type"
        if raw_type is None:
            raise PayloadError(f"{path} is required.", field=path)
        raise PayloadError(f"{path} must be one of {', '.join(MESSAGE_TYPES)}.", field=path)
    return _parse_item(
        kind,  # type: ignore[arg-type]
        item,
        prefix=prefix,
        received_at=received_at,
        limits=limits,
        base_context=envelope.context,
        base_sent_at=envelope.sent_at,
        new_id=new_id,
        text=text,
    )


def _encoded_size(item: Any) -> int:
    """Bytes of ``item`` as compact UTF-8 JSON (an unpaired surrogate counts as 3 bytes)."""
    try:
        return len(orjson.dumps(item))
    except (TypeError, orjson.JSONEncodeError):  # a surrogate, a huge integer: json can
        text = json.dumps(item, ensure_ascii=False, allow_nan=True, separators=(",", ":"))
        return len(text.encode("utf-8", "surrogatepass"))


__all__ = [
    "DEFAULT_LIMITS",
    "MESSAGE_TYPES",
    "Limits",
    "Message",
    "MessageType",
    "Parsed",
    "PayloadError",
    "Refusal",
    "decode_json",
    "may_hold_unstorable",
    "event_time",
    "parse_batch",
    "parse_call",
    "raw_json",
    "refusal",
    "shape_problem",
]
