"""Parsing Segment calls, bodies and traits, without a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from triggers.profiles import normalize_phone, valid_timezone
from triggers.segment import (
    PayloadError,
    decode_json,
    event_time,
    may_hold_unstorable,
    parse_batch,
    parse_call,
)

NOW = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+8613800138000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("+1 (415) 555-2671", "+14155552671"),
        ("+1234567", "+1234567"),
        ("13800138000", None),  # no country code
        ("+123456", None),  # too short
        ("+1234567890123456", None),  # too long
        ("+86 138.0013.8000", None),
        ("+86abc", None),
        (8613800138000, None),
        (None, None),
    ],
)
def test_normalize_phone(raw: object, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Asia/Shanghai", "Asia/Shanghai"),
        ("UTC", "UTC"),
        ("Mars/Olympus", None),
        ("../../etc/passwd", None),
        ("", None),
        (8, None),
    ],
)
def test_valid_timezone(raw: object, expected: str | None) -> None:
    assert valid_timezone(raw) == expected


def test_event_time_prefers_corrected_device_time() -> None:
    device = NOW + timedelta(hours=2)
    assert event_time(
        timestamp=device - timedelta(seconds=5),
        original_timestamp=None,
        sent_at=device,
        received_at=NOW,
    ) == NOW - timedelta(seconds=5)
    # Without sentAt the given timestamp is trusted (historical imports).
    ts = NOW - timedelta(days=3)
    assert event_time(timestamp=ts, original_timestamp=None, sent_at=None, received_at=NOW) == ts
    assert event_time(timestamp=None, original_timestamp=ts, sent_at=None, received_at=NOW) == ts
    assert event_time(timestamp=None, original_timestamp=None, sent_at=ts, received_at=NOW) == NOW


def test_timestamp_offsets_are_converted_to_utc() -> None:
    body = {"userId": "u1", "event": "x", "timestamp": "2024-05-01T18:00:00+08:00"}
    message = parse_call("track", body, received_at=NOW)
    assert message.timestamp == NOW
    assert message.timestamp.tzinfo is UTC


def test_single_endpoint_type_comes_from_the_url() -> None:
    body = {"type": "identify", "userId": "u1", "event": "x"}
    assert parse_call("track", body, received_at=NOW).type == "track"


def test_batch_type_is_case_insensitive_and_message_context_wins() -> None:
    data = {
        "batch": [{"type": "Track", "userId": "u1", "event": "x", "context": {"ip": "1.2.3.4"}}],
        "context": {"ip": "0.0.0.0", "library": {"name": "lib"}},
    }
    [message] = parse_batch(data, received_at=NOW).messages
    assert message.type == "track"
    assert message.context == {"ip": "1.2.3.4", "library": {"name": "lib"}}


def test_long_ids_are_refused_before_the_database_sees_them() -> None:
    with pytest.raises(PayloadError) as info:
        parse_call("track", {"userId": "u" * 256, "event": "x"}, received_at=NOW)
    assert info.value.field == "userId"
    assert "255" in info.value.message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "line 1, column 1"),
        (b'{"a": 1,}', "line 1, column 9"),
        (b"[1, 2]", "JSON object"),
        (b'{"a": NaN}', "NaN"),
        (b"\xff\xfe\xfa", "JSON"),
    ],
)
def test_decode_json_says_where(body: bytes, fragment: str) -> None:
    with pytest.raises(PayloadError) as info:
        decode_json(body)
    assert fragment in info.value.message
    assert info.value.status == 400


# --- decoding a body as json would, fast -----------------------------------------------------

_JSON_TEXT = st.text(
    alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=8
)
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _JSON_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_JSON_TEXT, inner, max_size=4),
    max_leaves=12,
)


def _holds_unstorable(value: object) -> bool:
    if isinstance(value, str):
        return any(c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_holds_unstorable(k) or _holds_unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_unstorable(v) for v in value)
    return False


@given(value=_JSON_VALUES, ascii_only=st.booleans())
@hypothesis_settings(max_examples=300, deadline=None)
def test_decode_json_reads_any_body_as_json_does(value: object, ascii_only: bool) -> None:
    """The fast decoder gives exactly what ``json`` gives (integers beyond 64 bits stay
    integers), and a body whose strings hold a NUL or a lone surrogate is never cleared by
    the quick scan that lets the per-string search be skipped."""
    text = json.dumps({"v": value}, ensure_ascii=ascii_only)
    body = text.encode("utf-8", "surrogatepass")
    assert repr(decode_json(body)) == repr(json.loads(body))
    if _holds_unstorable(value):
        assert may_hold_unstorable(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"n": 123456789012345678901234567890}', {"n": 123456789012345678901234567890}),
        ('{"s": "\u00e9"}'.encode("utf-16"), {"s": "\u00e9"}),  # json reads UTF-16 too
        (b'{"x": 1e400}', {"x": float("inf")}),  # refused later, per call, with its field
        (b'{"s": "\\ud800"}', {"s": "\ud800"}),
    ],
)
def test_decode_json_falls_back_where_orjson_differs(body: bytes, expected: object) -> None:
    assert decode_json(body) == expected


@pytest.mark.parametrize("body", [b'{"x": NaN}', b"[1]", b'{"a": 1', b"\xff\xfe\x00"])
def test_decode_json_refuses_what_json_refuses(body: bytes) -> None:
    with pytest.raises(PayloadError):
        decode_json(body)


def test_a_batch_cleared_by_the_scan_still_refuses_deep_and_infinite_values() -> None:
    deep: dict[str, object] = {}
    cursor = deep
    for _ in range(40):
        cursor["a"] = {}
        cursor = cursor["a"]  # type: ignore[assignment]
    body = (
        json.dumps(
            {
                "batch": [
                    {"type": "track", "userId": "u1", "event": "e", "properties": deep},
                    {"type": "track", "userId": "u1", "event": "e", "properties": {"p": [1, 2.5]}},
                    {"type": "track", "userId": "u1", "event": "e", "properties": {"ok": "fine"}},
                ]
            }  # fmt: skip
        )
        .encode()
        .replace(b"2.5", b"1e400")
    )  # json.dumps would write Infinity
    assert not may_hold_unstorable(body)
    parsed = parse_batch(decode_json(body), received_at=NOW, check_text=False)
    assert [m.properties for m in parsed.messages] == [{"ok": "fine"}]
    assert [(r.index, r.field) for r in parsed.refused] == [
        (0, "batch[0].properties" + ".a" * 32),
        (1, "batch[1].properties.p[1]"),
    ]
