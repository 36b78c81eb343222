"""The bounds of the edge on decoded JSON: how deep it nests, finite numbers only, no text the
database cannot store; and the body's decoding itself (orjson, else ``json``, which decides)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

from triggers.segment.calls import DEFAULT_LIMITS, Limits, PayloadError, field_path

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


def raw_json(value: Any) -> str:
    """``value`` as ASCII JSON: lone surrogates and NUL escaped, ``Infinity`` kept as sent."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True, separators=(",", ":"))


# U+0000 and lone surrogates: valid in JSON text, but PostgreSQL cannot store them.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _printable(key: str) -> str:
    """A key as it can appear in an error: unstorable characters written as escapes."""
    return UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", key)


def shape_problem_at(
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
    """:func:`shape_problem_at`'s walk; the path comes back innermost part first, built only
    for a value that fails."""
    if isinstance(value, str):
        if text and UNSTORABLE.search(value):
            return [], "contains a NUL character or an unpaired surrogate"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else ([], "must be a finite number")
    if isinstance(value, dict):
        if depth >= limits.max_depth:
            return [], f"nests deeper than {limits.max_depth} levels"
        for key, item in value.items():
            if text and UNSTORABLE.search(key):
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
_MAY_BEUNSTORABLE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]")


def may_hold_unstorable(body: bytes) -> bool:
    """Whether a JSON ``body`` could decode to a string with a NUL or a lone surrogate."""
    if b"\\u" not in body and b"\xed" not in body:  # two memchr scans, not a regex walk
        return False
    return _MAY_BEUNSTORABLE.search(body) is not None


def _number_classes() -> bytes:
    """A ``bytes.translate`` table: ASCII digits become ``0``, ``e``/``E`` become ``e``, signs
    ``+``, every other byte ``x``; a substring search on the result finds runs of digits in C
    (a regex tries each position of a 30 KB batch in turn)."""
    table = bytearray(b"x" * 256)
    for chars, cls in ((b"0123456789", ord("0")), (b"eE", ord("e")), (b"+-", ord("+"))):
        for char in chars:
            table[char] = cls
    return bytes(table)


_NUMBER_CLASSES = _number_classes()
# 19 digits in a row may be an integer beyond 64 bits (or text that merely looks like one).
_LONG_INTEGER = b"0" * 19


def _has_long_integer(classes: bytes) -> bool:
    return _LONG_INTEGER in classes


def all_numbers_finite(body: bytes) -> bool:
    """Whether every number in a JSON ``body`` surely decodes finite, judged on its bytes.

    A number overflows a double only beyond 1e308: with fewer than 19 digits before its
    point and an exponent of at most two digits it stays below 1e118. A body in UTF-16 or
    UTF-32 (which ``json`` reads) holds NUL bytes and is not judged.
    """
    if b"\x00" in body:
        return False
    classes = body.translate(_NUMBER_CLASSES)
    return not (_has_long_integer(classes) or b"e000" in classes or b"e+000" in classes)


def shape_problem(value: Any, path: str, limits: Limits = DEFAULT_LIMITS) -> tuple[str, str] | None:
    """Where ``value`` (a decoded JSON document) breaks the edge's bounds and why, or None:
    too deep, not finite, or text the database cannot store."""
    return shape_problem_at(value, path, 0, limits)


def check_shape(data: Mapping[str, Any], prefix: str, limits: Limits, text: bool = True) -> None:
    """Refuse a call whose stored fields are too deep, not finite or not storable."""
    for name in _STORED_FIELDS.values():
        value = data.get(name)
        if isinstance(value, dict | list | float) or (text and isinstance(value, str)):
            found = shape_problem_at(value, "", 0, limits, text=text)
            if found:
                path = field_path(prefix, (name,)) + found[0]
                raise PayloadError(f"{path} {found[1]}.", field=path)


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
    if not _has_long_integer(body.translate(_NUMBER_CLASSES)):
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


def compact_json(item: Any) -> bytes | None:
    """``item`` as compact UTF-8 JSON by orjson, or None where orjson cannot write it (an
    unpaired surrogate, an integer beyond 64 bits, nesting past orjson's limit)."""
    try:
        return orjson.dumps(item)
    except (TypeError, orjson.JSONEncodeError):
        return None


def encoded_size(item: Any, encoded: bytes | None = None) -> int:
    """Bytes of ``item`` as compact UTF-8 JSON (an unpaired surrogate counts as 3 bytes);
    ``encoded`` is its :func:`compact_json` when already known."""
    if encoded is None:
        encoded = compact_json(item)
    if encoded is not None:
        return len(encoded)
    text = json.dumps(item, ensure_ascii=False, allow_nan=True, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


def shape_is_clear(encoded: bytes, limits: Limits, *, text: bool) -> bool:
    """Whether :func:`check_shape` surely passes the call written as ``encoded`` (its
    :func:`compact_json`), without walking it, in a body whose numbers are all finite (see
    :func:`all_numbers_finite`): it has no more brackets than ``max_depth`` allows levels,
    and no text the database cannot store (orjson writes no unpaired surrogate and writes
    NUL as ``\\u0000``). False only means "walk it"."""
    if text and b"\\u0000" in encoded:
        return False
    return encoded.count(b"{") + encoded.count(b"[") <= limits.max_depth
