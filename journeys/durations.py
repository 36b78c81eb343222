"""Durations as marketers write them: ``30m``, ``2d``, ``7d``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([wdhms])")
_LONGEST = timedelta(days=3660)


def parse_duration(value: object) -> timedelta:
    """Parse ``"2d"``, ``"1h30m"`` (or a ``timedelta``) into a positive ``timedelta``.

    Raises:
        ValueError: the text is not a sequence of <number><unit> with units w, d, h, m, s.
    """
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a duration is text such as '30m', '2d' or '7d', not {value!r}")
    text = value.strip().lower()
    pos, seconds = 0, 0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        seconds += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(
            f"malformed duration {value!r}: write a number and a unit (w, d, h, m, s), "
            "e.g. '30m', '2d', '1h30m'"
        )
    if seconds == 0:
        raise ValueError(f"duration {value!r} is zero; give a positive one, e.g. '30m' or '2d'")
    if seconds > _LONGEST.total_seconds():
        raise ValueError(f"duration {value!r} is longer than 10 years")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest text that :func:`parse_duration` reads back as ``value``."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS.items():
        if unit == "w":
            continue  # "14d" reads better than "2w" in a journey
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
