"""Judging calls: one posted to ``/v1/{kind}``, or every item of a ``/v1/batch`` on its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from triggers.segment.calls import (
    DEFAULT_LIMITS,
    MESSAGE_TYPES,
    MODELS,
    AliasCall,
    BatchEnvelope,
    Call,
    GroupCall,
    IdentifyCall,
    Limits,
    Message,
    MessageType,
    PageCall,
    Parsed,
    PayloadError,
    Refusal,
    TrackCall,
    field_path,
    validate,
)
from triggers.segment.shape import (
    UNSTORABLE,
    all_numbers_finite,
    check_shape,
    compact_json,
    decode_json,
    encoded_size,
    may_hold_unstorable,
    raw_json,
    shape_is_clear,
    shape_problem_at,
)
from triggers.segment.timing import checked_time


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


def _normalise(
    kind: MessageType,
    call: Call,
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
        path = field_path(prefix, ("userId",))
        raise PayloadError(f"{path} or anonymousId is required.", field=path)
    ts, replaced = checked_time(
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
    shape_clear: bool = False,
) -> Message:
    if not shape_clear:
        check_shape(data, prefix, limits, text)
    call = validate(MODELS[kind], data, prefix)
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
    if not isinstance(message_id, str) or UNSTORABLE.search(message_id) or len(message_id) > 255:
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
    numbers_finite: bool = False,
) -> Parsed:
    """Judge every call of a ``/v1/batch`` body on its own.

    The top-level ``context`` is merged under each message's own (the message wins) and the
    top-level ``sentAt`` applies to messages without their own. ``check_text=False`` skips
    the search for NUL and lone surrogates, for a body :func:`may_hold_unstorable` cleared;
    ``numbers_finite=True``, for a body :func:`all_numbers_finite` cleared, lets a call whose
    JSON shows it shallow and storable skip the walk through its values.

    Raises:
        PayloadError: only when the body itself is wrong (no ``batch`` array, a top-level
            ``context`` that no call could be stored with).
    """
    envelope = validate(BatchEnvelope, data, "")
    if "context" in data:
        found = shape_problem_at(data["context"], "context", 0, limits)
        if found:
            path, why = found
            raise PayloadError(f"{path} {why}.", field=path)
    out = Parsed()
    for i, item in enumerate(envelope.batch):
        try:
            out.messages.append(
                _batch_item(
                    i, item, envelope, received_at, limits, new_id, check_text, numbers_finite
                )
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
    envelope: BatchEnvelope,
    received_at: datetime,
    limits: Limits,
    new_id: Callable[[], str],
    text: bool,
    numbers_finite: bool,
) -> Message:
    prefix = f"batch[{i}]"
    if not isinstance(item, dict):
        raise PayloadError(f"{prefix} must be a JSON object.", field=prefix)
    encoded = compact_json(item)
    limit = limits.max_message_bytes
    if limit is not None and encoded_size(item, encoded) > limit:
        raise PayloadError(
            f"{prefix} is larger than the {limit // 1024} KB allowed per message.", field=prefix
        )
    raw_type = item.get("type")
    kind = raw_type.lower() if isinstance(raw_type, str) else None
    if kind not in MODELS:
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
        shape_clear=(
            numbers_finite and encoded is not None and shape_is_clear(encoded, limits, text=text)
        ),
    )


def parse_single_body(
    kind: MessageType, body: bytes, *, received_at: datetime, limits: Limits = DEFAULT_LIMITS
) -> Parsed:
    """Judge the body of a ``/v1/{kind}`` request: the call, or its refusal to keep aside.

    Raises:
        PayloadError: only when the body is not a JSON object.
    """
    data = decode_json(body)
    try:
        return Parsed(
            messages=[
                parse_call(
                    kind,
                    data,
                    received_at=received_at,
                    limits=limits,
                    check_text=may_hold_unstorable(body),
                )
            ]
        )
    except PayloadError as exc:
        return Parsed(refused=[refusal(data, exc)])


def parse_batch_body(
    body: bytes, *, received_at: datetime, limits: Limits = DEFAULT_LIMITS
) -> Parsed:
    """Judge the body of a ``/v1/batch`` request, item by item (see :func:`parse_batch`)."""
    return parse_batch(
        decode_json(body),
        received_at=received_at,
        limits=limits,
        check_text=may_hold_unstorable(body),
        numbers_finite=all_numbers_finite(body),
    )
