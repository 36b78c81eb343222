"""The one list of channel kinds everything asks: ``kind("sms")``, ``all_kinds()``.

The package registers the built-in kinds when it is imported; a test adds a kind of its own
with :func:`registered`, which takes it away again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kinds.base import ChannelKind, Lesson

_KINDS: dict[str, ChannelKind] = {}


class UnknownKindError(KeyError):
    """No channel kind has this name."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown channel kind {self.name!r}; known: {', '.join(names())}"


def register(described: ChannelKind) -> ChannelKind:
    """Add ``described`` to the kinds; returns it, so a module can keep it as a constant.

    Raises:
        ValueError: Another kind already has its name.
    """
    if described.name in _KINDS and _KINDS[described.name] is not described:
        raise ValueError(f"channel kind {described.name!r} is already registered")
    _KINDS[described.name] = described
    return described


def unregister(name: str) -> None:
    """Remove the kind named ``name`` (a test's own kind, once the test is done)."""
    _KINDS.pop(name, None)


@contextmanager
def registered(described: ChannelKind) -> Iterator[ChannelKind]:
    """``described`` is a kind inside the block, and is not after it."""
    register(described)
    try:
        yield described
    finally:
        unregister(described.name)


def kind(name: str) -> ChannelKind:
    """The kind named ``name``.

    Raises:
        UnknownKindError: No kind has that name.
    """
    try:
        return _KINDS[name]
    except KeyError:
        raise UnknownKindError(name) from None


def lesson(channel: str, reason: str) -> Lesson | None:
    """What a permanent refusal with ``reason`` on ``channel`` teaches (None for a channel
    no kind has: a ledger row written before its kind went away)."""
    described = _KINDS.get(channel)
    return described.lesson(reason) if described else None


def is_kind(name: object) -> bool:
    """Whether ``name`` names a channel kind."""
    return isinstance(name, str) and name in _KINDS


def all_kinds() -> tuple[ChannelKind, ...]:
    """Every kind, in the order they were registered (sms, email, push first)."""
    return tuple(_KINDS.values())


def names() -> tuple[str, ...]:
    """Every kind's name, in the order they were registered."""
    return tuple(_KINDS)


def one_of() -> str:
    """The kinds' names as a sentence lists them: ``sms, email or push``."""
    listed = names()
    return listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} or {listed[-1]}"
