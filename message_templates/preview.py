"""A template as a marketer checks it before it goes out: every locale rendered for one
context (the sample, or a real user's), the SMS segments and encoding, and the template's own
problems with the line each is on.

Nothing here reads the store: a caller that previews for a real user loads the profile and
the coupon and passes them to :func:`user_context`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from message_templates.errors import TemplateError
from message_templates.render import RenderedMessage, TemplateRenderer
from message_templates.sample import sample_context
from message_templates.sms import is_gsm7
from message_templates.spec import read_template_file

if TYPE_CHECKING:
    from store.models import Coupon, User


def sms_encoding(text: str) -> str:
    """``GSM-7`` when every character is in the GSM alphabet, else ``UCS-2`` (the encoding
    :func:`message_templates.sms.sms_segments` counts segments in)."""
    return "GSM-7" if is_gsm7(text) else "UCS-2"


@dataclass(frozen=True)
class TemplateProblem:
    """One thing wrong with a template.

    Attributes:
        problem: What is wrong, without the location.
        line: The line of the template file, when known.
        where: The key at fault (``locales.en.body``, ``data.deep_link``), when known.
        text: The whole message, as the command line prints it.
    """

    problem: str
    line: int | None
    where: str | None
    text: str

    @classmethod
    def of(cls, error: TemplateError) -> TemplateProblem:
        where = f"locales.{error.locale}" if error.locale else None
        if error.part:
            where = f"{where}.{error.part}" if where else error.part
        return cls(problem=error.problem, line=error.line, where=where, text=str(error))


@dataclass(frozen=True)
class TemplateSummary:
    """A template as the list shows it.

    Attributes:
        name: The template name.
        channel: The channel it is written for; None when the file cannot be read.
        locales: Its locales, as the file writes them.
        description: What it is for, in the file's words.
        problems: What fails when it is rendered with the sample context.
    """

    name: str
    channel: str | None
    locales: tuple[str, ...]
    description: str | None
    problems: tuple[TemplateProblem, ...]


@dataclass(frozen=True)
class LocalePreview:
    """One locale of a template rendered for the preview's context.

    Attributes:
        locale: The locale, as the file writes it.
        message: The rendered message; None when rendering failed.
        problem: Why rendering failed.
    """

    locale: str
    message: RenderedMessage | None
    problem: TemplateProblem | None = None

    @property
    def encoding(self) -> str | None:
        """The SMS encoding of the body (``GSM-7`` or ``UCS-2``); None for other channels."""
        if self.message is None or self.message.segments is None:
            return None
        return sms_encoding(self.message.body)


@dataclass(frozen=True)
class TemplatePreview:
    """A template rendered in every locale for one context.

    Attributes:
        summary: The template and its problems with the sample context.
        chosen: The locale the context's user is sent (after fallback); None when the
            template cannot be rendered for them.
        locales: Every locale, rendered.
    """

    summary: TemplateSummary
    chosen: str | None
    locales: tuple[LocalePreview, ...]


def summarize(templates: TemplateRenderer, name: str) -> TemplateSummary:
    """The template ``name``: its channel, locales and problems with the sample context.

    Raises:
        UnknownTemplateError: No template has this name.
    """
    if name not in templates.names():
        templates.channel_of(name)  # raises UnknownTemplateError, worded as everywhere
    try:
        spec = read_template_file(templates.directory / f"{name}.yaml", name=name)
    except TemplateError as exc:
        return TemplateSummary(name, None, (), None, (TemplateProblem.of(exc),))
    try:
        templates.channel_of(name)  # compiles it: Jinja syntax, the default locale missing
    except TemplateError as exc:
        problems: tuple[TemplateProblem, ...] = (TemplateProblem.of(exc),)
    else:
        rendered = _render_each(
            templates, name, spec.channel, tuple(spec.locales), sample_context()
        )
        problems = tuple(each.problem for each in rendered if each.problem is not None)
    return TemplateSummary(name, spec.channel, tuple(spec.locales), spec.description, problems)


def preview(
    templates: TemplateRenderer, name: str, *, context: Mapping[str, Any] | None = None
) -> TemplatePreview:
    """Render every locale of ``name`` for ``context`` (the sample by default).

    Raises:
        UnknownTemplateError: No template has this name.
    """
    context = sample_context() if context is None else context
    summary = summarize(templates, name)
    if summary.channel is None:
        return TemplatePreview(summary, None, ())
    locales = _render_each(templates, name, summary.channel, summary.locales, context)
    user = context.get("user") or {}
    try:
        chosen: str | None = templates.render(
            name, channel=summary.channel, locale=user.get("locale"), context=context
        ).locale
    except TemplateError:
        chosen = None
    return TemplatePreview(summary, chosen, locales)


def user_context(
    user: User, coupon: Coupon | None, *, default_locale: str, default_timezone: str
) -> dict[str, Any]:
    """The sample context with a real user's profile, and their coupon when they hold one.

    The trigger and the unsubscribe link stay the sample's: a preview (or a test send of it)
    must never carry a link that would unsubscribe the real user.
    """
    context = sample_context()
    traits = user.traits or {}
    context["user"] = {
        "id": user.id,
        "name": str(traits.get("name") or traits.get("first_name") or ""),
        "member_tier": user.member_tier,
        "locale": user.locale or default_locale,
        "timezone": user.timezone or default_timezone,
    }
    if coupon is not None:
        context["coupon"] = {
            "code": coupon.code,
            "amount_fen": coupon.amount_fen,
            "min_spend_fen": coupon.min_spend_fen,
            "expires_at": coupon.expires_at,
        }
    return context


def _render_each(
    templates: TemplateRenderer,
    name: str,
    channel: str,
    locales: tuple[str, ...],
    context: Mapping[str, Any],
) -> tuple[LocalePreview, ...]:
    previews = []
    for locale in locales:
        try:
            message = templates.render(name, channel=channel, locale=locale, context=context)
        except TemplateError as exc:
            previews.append(LocalePreview(locale, None, TemplateProblem.of(exc)))
        else:
            previews.append(LocalePreview(locale, message))
    return tuple(previews)
