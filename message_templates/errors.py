"""What goes wrong with a template, said so a marketer can find and fix it.

Every :class:`TemplateError` is permanent: rendering the same template with the same
context fails the same way, so a caller should not retry it.
"""

from __future__ import annotations

from pathlib import Path


class TemplateError(Exception):
    """A template could not be found, loaded or rendered.

    The message names the template file and, where known, the line and the locale and part
    (``locales.en.body``) at fault. The same facts are kept as attributes.

    Attributes:
        problem: What went wrong, without the location.
        template: The template name, e.g. ``new_user_welcome_sms``.
        file: The template file, if there is one.
        locale: The locale being loaded or rendered.
        part: The part (``body``, ``subject``, ``html``, ...) being loaded or rendered.
        line: The line in ``file``, when known.
    """

    def __init__(
        self,
        problem: str,
        *,
        template: str | None = None,
        file: Path | None = None,
        locale: str | None = None,
        part: str | None = None,
        line: int | None = None,
    ) -> None:
        self.problem = problem
        self.template = template
        self.file = file
        self.locale = locale
        self.part = part
        self.line = line
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = self.file.name if self.file is not None else (self.template or "template")
        if self.line is not None:
            where += f", line {self.line}"
        if self.locale is not None:
            key = f"locales.{self.locale}" + (f".{self.part}" if self.part else "")
            where += f" ({key})"
        elif self.part is not None:
            where += f" ({self.part})"
        return f"{where}: {self.problem}"


class UnknownTemplateError(TemplateError):
    """No template file has this name."""


class InvalidTemplateError(TemplateError):
    """The template file is malformed: bad YAML, a missing or unknown field, Jinja syntax."""


class WrongChannelError(TemplateError):
    """The template was asked for on a channel it was not written for."""


class UndefinedVariableError(TemplateError):
    """The template used a variable the context does not have.

    Attributes:
        variable: The missing name as the template spells it, e.g. ``user.nickname``.
    """

    def __init__(
        self,
        problem: str,
        *,
        variable: str,
        template: str | None = None,
        file: Path | None = None,
        locale: str | None = None,
        part: str | None = None,
        line: int | None = None,
    ) -> None:
        self.variable = variable
        super().__init__(problem, template=template, file=file, locale=locale, part=part, line=line)


class SandboxViolationError(TemplateError):
    """The template tried to reach something the sandbox forbids (Python internals, mutation)."""
