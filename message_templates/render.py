"""Rendering a named template for one channel, locale and context into a RenderedMessage."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import Template, TemplateNotFound, TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.utils import missing
from markupsafe import escape

from kinds import kind
from message_templates.environment import MissingVariableError, build_environment
from message_templates.errors import (
    InvalidTemplateError,
    SandboxViolationError,
    TemplateError,
    UndefinedVariableError,
    UnknownTemplateError,
    WrongChannelError,
)
from message_templates.filters import (
    DEFAULT_TIMEZONE,
    HOME_LOCALE_GLOBAL,
    LOCALE_GLOBAL,
    TIMEZONE_GLOBAL,
)
from message_templates.sms import sms_segments, with_opt_out
from message_templates.spec import (
    PartSource,
    TemplateSpec,
    normalize_locale,
    read_template_file,
)

TEMPLATES_DIRECTORY = Path(__file__).parent / "templates"
DEFAULT_SMS_OPT_OUT_TEXT = {"zh": "回T退订", "en": "Reply STOP to opt out"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class RenderedMessage:
    """One message ready for a channel to send.

    Attributes:
        template: The template name.
        channel: ``sms``, ``email`` or ``push``.
        locale: The locale actually rendered (after fallback), as the template file spells it.
        body: The SMS text (opt-out included), the push body or the email's plain text.
        subject: The email subject.
        html: The email HTML.
        title: The push title.
        data: Push data: a deep link under ``"link"``, then the template's ``data`` keys
            (those that render empty are left out).
        segments: How many SMS segments ``body`` is sent as; None for other channels.
        priority: The push priority (``high`` or ``normal``), when the template sets one.
        ttl_seconds: How long an undelivered push stays worth delivering, when set.
        sound: The push sound, when the template sets one.
        preheader: The email's inbox preview line (already first in ``html``), when set.
    """

    template: str
    channel: str
    locale: str
    body: str
    subject: str | None = None
    html: str | None = None
    title: str | None = None
    data: dict[str, str] = field(default_factory=dict)
    segments: int | None = None
    priority: str | None = None
    ttl_seconds: int | None = None
    sound: str | None = None
    preheader: str | None = None


@dataclass(frozen=True)
class _Compiled:
    spec: TemplateSpec
    parts: dict[str, dict[str, Template]]  # locale as written -> part -> template
    # locale as written -> data key -> template: compiled per locale, as filters read it
    data: dict[str, dict[str, Template]] = field(default_factory=dict)


class TemplateRenderer:
    """Loads template files from one directory and renders them in a sandbox.

    A file is read and compiled the first time its template is asked for, then kept, so a
    broken file fails only the templates that use it (and :meth:`check` reports it).
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        default_locale: str = "zh-CN",
        sms_opt_out_text: dict[str, str] | None = None,
        default_timezone: str = DEFAULT_TIMEZONE,
    ) -> None:
        """Build a renderer; nothing is read until a template is used.

        Args:
            directory: Where ``<name>.yaml`` files live; the shipped templates by default.
            default_locale: The locale used when neither the recipient's locale nor its
                language has text. Every template must have it (or its language).
            sms_opt_out_text: Opt-out text appended to every SMS, keyed by locale or
                language (``{"zh": "回T退订", "en": "Reply STOP to opt out"}`` by default).
                A locale without an entry gets the default locale's text; an empty mapping
                appends nothing.
            default_timezone: IANA zone for dates when ``user.timezone`` is missing or bad.
        """
        self.directory = directory if directory is not None else TEMPLATES_DIRECTORY
        self.default_locale = default_locale
        opt_out = DEFAULT_SMS_OPT_OUT_TEXT if sms_opt_out_text is None else sms_opt_out_text
        self._opt_out = {normalize_locale(key): text for key, text in opt_out.items()}
        self._default_timezone = default_timezone
        self._text_env = build_environment(html=False)
        self._html_env = build_environment(html=True)
        self._loaded: dict[str, _Compiled] = {}

    def names(self) -> list[str]:
        """The names of all templates in the directory, sorted."""
        return sorted(
            path.stem
            for path in self.directory.glob("*.yaml")
            if path.is_file() and _NAME.fullmatch(path.stem)
        )

    def channel_of(self, name: str) -> str:
        """The channel a template is written for.

        Raises:
            UnknownTemplateError: No template has this name.
            InvalidTemplateError: The template file is malformed.
        """
        return self._load(name).spec.channel

    def render(
        self, name: str, *, channel: str, locale: str | None, context: Mapping[str, Any]
    ) -> RenderedMessage:
        """Render a template for a recipient.

        Args:
            name: The template name (its file name without ``.yaml``).
            channel: The channel it will be sent on; must be the template's own.
            locale: The recipient's locale (``en-US``, ``zh_CN``...); None for the default.
                Tried as is, then its language, then the default locale.
            context: The variables: ``user``, ``coupon``, ``trigger``, ``unsubscribe_url``.

        Returns:
            The rendered message, with the locale actually used.

        Raises:
            TemplateError: Or one of its subclasses; always permanent.
        """
        compiled = self._load(name)
        _check_channel(compiled.spec, channel)
        used = self._pick_locale(compiled.spec, locale)
        assert used is not None  # _load refuses files without the default locale
        return self._render_locale(compiled, used, context)

    def check(self, name: str, *, channel: str, context: Mapping[str, Any]) -> list[str]:
        """Render every locale of a template with a sample context and list what fails.

        Args:
            name: The template name.
            channel: The channel the template would be sent on.
            context: A sample context shaped like the real one.

        Returns:
            One message per problem (unknown template, wrong channel, malformed file, a
            locale that fails to render); empty when the template is good to use.
        """
        try:
            compiled = self._load(name)
            _check_channel(compiled.spec, channel)
        except TemplateError as exc:
            return [str(exc)]
        problems = []
        for locale in compiled.spec.locales:
            try:
                self._render_locale(compiled, locale, context)
            except TemplateError as exc:
                problems.append(str(exc))
        return problems

    def _load(self, name: str) -> _Compiled:
        if name in self._loaded:
            return self._loaded[name]
        path = self.directory / f"{name}.yaml"
        # The name pattern keeps lookups inside the directory ("../", absolute paths).
        if not _NAME.fullmatch(name) or not path.is_file():
            raise UnknownTemplateError(
                f"no template named {name!r} in {self.directory}", template=name
            )
        spec = read_template_file(path, name=name)
        if self._pick_locale(spec, None) is None:
            raise InvalidTemplateError(
                f"no text for the default locale {self.default_locale}",
                template=name,
                file=path,
            )
        compiled = _Compiled(
            spec=spec,
            parts=self._compile(spec),
            data={
                locale: {
                    key: self._compile_part(spec, locale, f"data.{key}", source)
                    for key, source in spec.data.items()
                }
                for locale in spec.locales
            },
        )
        self._loaded[name] = compiled
        return compiled

    def _compile(self, spec: TemplateSpec) -> dict[str, dict[str, Template]]:
        return {
            locale: {
                part: self._compile_part(spec, locale, part, source)
                for part, source in sources.items()
            }
            for locale, sources in spec.locales.items()
        }

    def _compile_part(
        self, spec: TemplateSpec, locale: str, part: str, source: PartSource
    ) -> Template:
        html = kind(spec.channel).template.html
        env = self._html_env if part == html else self._text_env
        template_globals = {
            LOCALE_GLOBAL: locale,
            HOME_LOCALE_GLOBAL: self.default_locale,
            TIMEZONE_GLOBAL: self._default_timezone,
        }
        try:
            return env.from_string(source.source, globals=template_globals)
        except TemplateSyntaxError as exc:
            problem = f"template syntax error: {exc.message}"
            if not source.exact and exc.lineno > 1:
                problem += f" (line {exc.lineno} of the text)"
            raise InvalidTemplateError(
                problem,
                template=spec.name,
                file=spec.path,
                # Data keys sit outside ``locales``: name them as the file does.
                locale=None if part.startswith("data.") else locale,
                part=part,
                line=source.file_line(exc.lineno),
            ) from exc

    def _pick_locale(self, spec: TemplateSpec, wanted: str | None) -> str | None:
        by_key = {normalize_locale(locale): locale for locale in spec.locales}
        for candidate in _locale_chain(wanted, self.default_locale):
            if candidate in by_key:
                return by_key[candidate]
            if "-" not in candidate:
                # "en" wanted, only "en-US" written: still better than another language.
                for key, locale in by_key.items():
                    if key.split("-")[0] == candidate:
                        return locale
        return None

    def _render_locale(
        self, compiled: _Compiled, locale: str, context: Mapping[str, Any]
    ) -> RenderedMessage:
        spec = compiled.spec
        text = {
            part: self._render_part(compiled, locale, part, context)
            for part in compiled.parts[locale]
        }
        template = kind(spec.channel).template
        for part in sorted(template.required):
            if not text[part]:
                raise TemplateError(
                    "renders empty", template=spec.name, file=spec.path, locale=locale, part=part
                )
        body = text[template.body]
        if template.opt_out_footer:
            body = with_opt_out(body, self._opt_out_text(locale))
        html = text[template.html] if template.html else None
        preheader = _one_line(text.get(template.preheader) or "") if template.preheader else ""
        if html is not None and preheader:
            # The inbox preview line: first in the body, hidden when the mail is opened.
            hidden = "display:none;max-height:0;overflow:hidden;mso-hide:all"
            html = f'<div style="{hidden}">{escape(preheader)}</div>\n{html}'
        link = text.get(template.link) if template.link else None
        data = {"link": link} if link else {}
        for key in spec.data:
            value = self._render_data(compiled, locale, key, context)
            if value:
                data[key] = value
        return RenderedMessage(
            spec.name,
            spec.channel,
            locale,
            body=body,
            subject=_one_line(text[template.subject]) if template.subject else None,
            html=html,
            title=_one_line(text[template.title]) if template.title else None,
            data=data,
            segments=sms_segments(body) if template.segmented else None,
            priority=spec.push.priority,
            ttl_seconds=spec.push.ttl_seconds,
            sound=spec.push.sound,
            preheader=preheader or None,
        )

    def _render_part(
        self, compiled: _Compiled, locale: str, part: str, context: Mapping[str, Any]
    ) -> str:
        spec = compiled.spec
        try:
            return compiled.parts[locale][part].render(context).strip()
        except Exception as exc:  # whatever a template does wrong is reported as its error
            line = _error_line(spec.locales[locale][part], exc.__traceback__)
            where = {"template": spec.name, "file": spec.path, "locale": locale, "part": part}
            raise _render_error(exc, context, line=line, **where) from exc

    def _render_data(
        self, compiled: _Compiled, locale: str, key: str, context: Mapping[str, Any]
    ) -> str:
        spec = compiled.spec
        try:
            return compiled.data[locale][key].render(context).strip()
        except Exception as exc:  # as for parts: the template's own error
            line = _error_line(spec.data[key], exc.__traceback__)
            where = {"template": spec.name, "file": spec.path, "part": f"data.{key}"}
            raise _render_error(exc, context, line=line, **where) from exc

    def _opt_out_text(self, locale: str) -> str | None:
        for candidate in _locale_chain(locale, self.default_locale):
            if candidate in self._opt_out:
                return self._opt_out[candidate]
        return None


def _check_channel(spec: TemplateSpec, channel: str) -> None:
    if channel != spec.channel:
        raise WrongChannelError(
            f"written for {spec.channel}, not {channel}", template=spec.name, file=spec.path
        )


def _locale_chain(wanted: str | None, default: str) -> list[str]:
    """``en-US`` → ``en-us``, ``en``, then the default locale and its language."""
    chain: list[str] = []
    for locale in (wanted, default):
        if locale:
            key = normalize_locale(locale)
            for candidate in (key, key.split("-")[0]):
                if candidate not in chain:
                    chain.append(candidate)
    return chain


def _render_error(exc: Exception, context: Mapping[str, Any], **where: Any) -> TemplateError:
    if isinstance(exc, SecurityError):
        return SandboxViolationError(f"not allowed in a template: {exc}", **where)
    if isinstance(exc, UndefinedError):
        variable = _variable_name(exc, context)
        problem = f"undefined variable '{variable}'" if variable else str(exc)
        return UndefinedVariableError(problem, variable=variable or "", **where)
    if isinstance(exc, TemplateNotFound):
        return InvalidTemplateError(
            "templates cannot include, import or extend other templates", **where
        )
    # A filter refusing its input, range() past the sandbox's limit, ...
    return TemplateError(f"rendering failed: {type(exc).__name__}: {exc}", **where)


def _variable_name(exc: UndefinedError, context: Mapping[str, Any]) -> str | None:
    """The missing variable as the template spells it: ``user.nickname`` if findable."""
    if not isinstance(exc, MissingVariableError) or exc.name is None:
        return None
    if exc.owner is missing:
        return str(exc.name)
    # Only the owning object is known; find which context value (or value inside one) it is.
    for key, value in context.items():
        if value is exc.owner:
            return f"{key}.{exc.name}"
        if isinstance(value, Mapping):
            for inner_key, inner in value.items():
                if inner is exc.owner:
                    return f"{key}.{inner_key}.{exc.name}"
    return str(exc.name)


def _error_line(source: PartSource, tb: TracebackType | None) -> int:
    """The file line a rendering error happened on.

    Jinja rewrites tracebacks so template frames carry template line numbers under the file
    name ``<template>``; the innermost one is where the error happened.
    """
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return source.file_line(line)


def _one_line(text: str) -> str:
    # Subjects and titles are single lines; a newline from a trait must not split them.
    return _WHITESPACE.sub(" ", text).strip()
