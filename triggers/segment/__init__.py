"""Segment's HTTP tracking API, as data: payload models and their normalised form.

The platform (or any Segment client library) sends ``identify``, ``track``, ``page``,
``screen``, ``group`` and ``alias`` calls, one at a time or in a ``batch``. This package turns a
decoded JSON body into :class:`Message` values ready to store. A batch is judged item by item:
a refused item becomes a :class:`Refusal` (its raw JSON, the field at fault such as
``batch[2].userId``, the reason) and the others are kept. A single call that is refused raises
:class:`PayloadError`. Unknown fields are ignored, as Segment does.

Every call is bounded at the edge (:class:`Limits`): its size, how deep ``properties``,
``traits`` and ``context`` nest, finite numbers only, no NUL or unpaired surrogate in what is
stored. An event time ahead of the receive time by more than ``max_future_skew``, or before
``earliest``, is replaced by the receive time and flagged in ``context.timestampReplaced``.

The package is split along those concerns: :mod:`~triggers.segment.calls` (the call models and
what a judged call becomes), :mod:`~triggers.segment.shape` (the bounds on decoded JSON and the
body's decoding), :mod:`~triggers.segment.timing` (the event's time) and
:mod:`~triggers.segment.parse` (judging a call or a batch).
"""

from __future__ import annotations

from triggers.segment.calls import (
    DEFAULT_LIMITS,
    MESSAGE_TYPES,
    Limits,
    Message,
    MessageType,
    Parsed,
    PayloadError,
    Refusal,
    limits_of,
)
from triggers.segment.parse import (
    parse_batch,
    parse_batch_body,
    parse_call,
    parse_single_body,
    refusal,
)
from triggers.segment.shape import decode_json, may_hold_unstorable, raw_json, shape_problem
from triggers.segment.timing import event_time

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
    "limits_of",
    "parse_batch",
    "parse_batch_body",
    "parse_call",
    "parse_single_body",
    "raw_json",
    "refusal",
    "shape_problem",
]
