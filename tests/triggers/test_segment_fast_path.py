"""A batch's calls that their JSON shows shallow and storable skip the walk through their
values: the verdicts, the stored values and the refusals stay exactly those of the walk."""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from triggers.segment import (
    Limits,
    PayloadError,
    decode_json,
    may_hold_unstorable,
    parse_batch,
)
from triggers.segment.shape import all_numbers_finite

NOW = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)

# Number literals json.dumps never writes: some overflow a double, some only look as if.
_LITERALS = [
    "1e400", "-1E+999", "1e-400", "1e308", "1.7e308", "2e308", "1e99", "-12.5e-07",
    "123456789012345678901", "1234567890123456789.5e300", "9" * 400, "9" * 400 + ".5",
    "1" + "0" * 300 + "e9", "0.5", "1E0400",
]  # fmt: skip
_MARK = "@@lit{}@@"

_TEXT = (
    st.text(max_size=6, alphabet=st.characters(codec="ascii", exclude_characters="\x00"))
    | st.text(
        alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=6
    )
    | st.sampled_from(["u1", "2024-05-01T10:00:00Z", "Track", "identify", "", "x" * 300])
)
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(min_value=-1e12, max_value=1e12)
    | _TEXT
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=10,
)
_KEYS = st.sampled_from(
    [
        "type", "userId", "anonymousId", "messageId", "event", "properties", "traits",
        "context", "timestamp", "sentAt", "originalTimestamp", "name", "groupId",
        "previousId", "integrations", "user_id",
    ]
) | _TEXT  # fmt: skip
_TYPES = st.sampled_from(["track", "Track", "identify", "page", "screen", "group", "alias"])


@st.composite
def _items(draw: st.DrawFn) -> object:
    item = draw(st.dictionaries(_KEYS, _VALUES, max_size=6))
    if draw(st.booleans()):
        item["type"] = draw(_TYPES)
    if draw(st.booleans()):
        item["userId"] = draw(st.sampled_from(["u1", "u2"]))
    if item.get("type") in ("track", "Track") and draw(st.booleans()):
        item["event"] = "e"
    for name in ("properties", "traits", "context"):
        if draw(st.booleans()):
            item[name] = draw(st.dictionaries(_TEXT, _VALUES, max_size=3))
    if not draw(st.integers(0, 4)):  # now and then a number json.dumps never writes
        item[draw(_KEYS)] = draw(st.sampled_from([_MARK.format(i) for i in range(len(_LITERALS))]))
    return item if draw(st.integers(0, 9)) else draw(_VALUES)


@st.composite
def _calls(draw: st.DrawFn) -> dict[str, object]:
    """A call as libraries send them, whose values may still be too deep or unstorable."""
    kind = draw(_TYPES)
    item: dict[str, object] = {"type": kind, "userId": draw(st.sampled_from(["u1", "u\x00"]))}
    item["event" if kind.lower() == "track" else "name"] = "e"
    for name in ("properties", "traits", "context"):
        if draw(st.booleans()):
            item[name] = draw(st.dictionaries(_TEXT, _VALUES, max_size=3))
    return item


def _body(items: list[object], ascii_only: bool) -> bytes:
    text = json.dumps({"batch": items}, ensure_ascii=ascii_only)
    for i, literal in enumerate(_LITERALS):
        text = text.replace(json.dumps(_MARK.format(i)), literal)
    return text.encode("utf-8", "surrogatepass")


def _judged(data: dict[str, object], limits: Limits, *, text: bool, finite: bool) -> str:
    new_id = map(str, itertools.count()).__next__
    try:
        parsed = parse_batch(
            data,
            received_at=NOW,
            limits=limits,
            new_id=new_id,
            check_text=text,
            numbers_finite=finite,
        )
    except PayloadError as exc:
        return repr((exc.message, exc.field))
    # repr keeps the order of keys, as the stored JSON does.
    return repr((parsed.messages, parsed.refused))


def _floats(value: object) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    return []


@given(
    items=st.lists(_items() | _calls(), max_size=4),
    ascii_only=st.booleans(),
    depth=st.integers(min_value=0, max_value=9),
    max_bytes=st.sampled_from([None, 64, 32 * 1024]),
)
@hypothesis_settings(max_examples=400, deadline=None)
def test_a_batch_skipping_the_walk_is_judged_as_one_that_walks(
    items: list[object], ascii_only: bool, depth: int, max_bytes: int | None
) -> None:
    body = _body(items, ascii_only)
    try:
        data = decode_json(body)
    except PayloadError:
        return
    finite = all_numbers_finite(body)
    if finite:  # the scan of the bytes never clears a number that decodes infinite
        assert all(math.isfinite(f) for f in _floats(data))
    limits = Limits(max_message_bytes=max_bytes, max_depth=depth)
    text = may_hold_unstorable(body)
    walked = _judged(data, limits, text=text, finite=False)
    assert _judged(data, limits, text=text, finite=finite) == walked
    assert _judged(data, limits, text=True, finite=finite) == _judged(
        data, limits, text=True, finite=False
    )


@given(
    mantissa=st.from_regex(
        r"-?(0|[1-9][0-9]{0,24}|[1-9][0-9]{290,320})(\.[0-9]{1,5})?", fullmatch=True
    ),
    exponent=st.from_regex(r"[eE][-+]?[0-9]{1,4}", fullmatch=True) | st.just(""),
)
@hypothesis_settings(max_examples=300, deadline=None)
def test_the_scan_never_clears_a_number_beyond_a_double(mantissa: str, exponent: str) -> None:
    body = f'{{"batch": [], "n": {mantissa}{exponent}}}'.encode()
    value = decode_json(body)["n"]
    if all_numbers_finite(body):
        assert not isinstance(value, float) or math.isfinite(value)


def test_a_body_in_utf16_is_not_cleared() -> None:
    assert not all_numbers_finite('{"n": 1e400}'.encode("utf-16"))
    assert all_numbers_finite(b'{"n": 1e40, "m": 123456789012345678}')
