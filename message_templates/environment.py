"""The sandboxed Jinja environments templates are compiled in.

Templates are written by marketers, not engineers, so they run in Jinja's immutable sandbox:
no attribute starting with ``_``, no Python internals, no changing the context. Every
variable must exist (a typo fails loudly instead of sending "Hi ,"). Templates come from
strings read out of the template files; the loader is empty, so ``{% include %}`` and
``{% extends %}`` reach nothing on disk.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from jinja2 import DictLoader, StrictUndefined
from jinja2.exceptions import SecurityError, TemplateRuntimeError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

from message_templates.filters import FILTERS


class MissingVariableError(UndefinedError):
    """An undefined variable, remembering its name and the object it was looked up on."""

    def __init__(self, message: str | None = None, *, name: str | None, owner: Any) -> None:
        super().__init__(message)
        self.name = name
        self.owner = owner  # ``missing`` for a top-level name


class _StrictUndefined(StrictUndefined):
    """StrictUndefined whose error says which name was missing, for a precise message.

    The sandbox builds undefineds with ``exc=SecurityError`` for forbidden attributes;
    those are left alone so a violation is reported as one.
    """

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
    ) -> None:
        if exc is UndefinedError:
            exc = partial(MissingVariableError, name=name, owner=obj)  # type: ignore[assignment]
        super().__init__(hint, obj, name, exc)


# No message needs more: a template that builds a bigger value is refused, not rendered.
MAX_VALUE_LENGTH = 100_000


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus a bound on what ``*`` and ``**`` may build
    (``'a' * 10**9`` would otherwise exhaust the worker's memory)."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 100:
            raise SecurityError("exponent too large")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    if len(seq) * times > MAX_VALUE_LENGTH:
                        raise SecurityError("the value this builds is too long for a message")
        return super().call_binop(context, operator, left, right)


def build_environment(*, html: bool) -> ImmutableSandboxedEnvironment:
    """A sandboxed environment with the template filters.

    Args:
        html: Autoescape output (the email ``html`` part); text parts are not escaped.

    Returns:
        The environment.
    """
    env = _BoundedSandbox(
        loader=DictLoader({}),
        undefined=_StrictUndefined,
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env
