"""``lifecycle templates`` (preview, send-test) and the quick ``lifecycle send-test``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import kinds
from cli.common import CliError, Commands, actions, command, renderer, session_factory
from config import Settings

if TYPE_CHECKING:
    from message_templates.render import RenderedMessage, TemplateRenderer


def _template_context(settings: Settings, user_id: str | None) -> dict[str, object]:
    """Sample data, or a real user's: their profile, locale, timezone and coupon (the sample
    trigger and unsubscribe link stay, so a preview never carries the user's real link)."""
    from message_templates.sample import sample_context

    if user_id is None:
        return sample_context()
    import compose
    from console.template_sends import real_user_context

    with session_factory(settings)() as session:
        context = real_user_context(
            session,
            user_id=user_id,
            now=compose.clock(),
            default_locale=settings.default_locale,
            default_timezone=settings.default_timezone,
        )
    if context is None:
        raise CliError(f"no user {user_id!r}")
    return context


def _sample_template(templates: TemplateRenderer, channel: str) -> str:
    """The template ``send-test --channel`` sends: the channel's new-user template (the
    first of its templates if it has none)."""
    mine = [name for name in templates.names() if templates.channel_of(name) == channel]
    preferred = [name for name in mine if name.startswith("new_user_")] + mine
    if not preferred:
        raise CliError(f"no template is for {channel}: give --template")
    return preferred[0]


def _render(settings: Settings, args: argparse.Namespace) -> RenderedMessage:
    from message_templates.render import TemplateError

    templates = renderer(settings)
    try:
        channel = templates.channel_of(args.template)
        context = _template_context(settings, getattr(args, "user", None))
        user = context.get("user")
        # As the help says: the user's own locale unless --locale names another.
        locale = args.locale or (user.get("locale") if isinstance(user, dict) else None)
        return templates.render(args.template, channel=channel, locale=locale, context=context)
    except TemplateError as exc:
        raise CliError(str(exc)) from None


def cmd_preview(settings: Settings, args: argparse.Namespace) -> int:
    message = _render(settings, args)
    print(f"{message.template} · {message.channel} · {message.locale}", end="")
    print(f" · {message.segments} SMS segment(s)" if message.segments else "")
    for label, text in (("title", message.title), ("subject", message.subject)):
        if text:
            print(f"{label}: {text}")
    print(message.body)
    if message.html and args.html:
        print(message.html)
    if message.data:
        print(f"data: {message.data}")
    return 0


def cmd_send_test(settings: Settings, args: argparse.Namespace) -> int:
    """Both forms: ``templates send-test TEMPLATE`` and ``send-test --channel`` (its sample
    template unless ``--template``)."""
    import compose
    from channels.base import PermanentSendError, TransientSendError
    from console.template_sends import outbound_test

    if getattr(args, "channel", None) and not args.template:
        args.template = _sample_template(renderer(settings), args.channel)
    message = _render(settings, args)
    if getattr(args, "channel", None) and message.channel != args.channel:
        raise CliError(
            f"template {message.template!r} is for {message.channel}, not {args.channel}"
        )
    channel = compose.channels(settings, session_factory(settings))[message.channel]
    outbound = outbound_test(message, to=args.to)
    try:
        result = channel.send(outbound)
    except (PermanentSendError, TransientSendError) as exc:
        raise CliError(f"{channel.name} refused: {exc}") from None
    print(f"sent through {result.provider}: {result.provider_message_id}")
    return 0


def register(sub: Commands) -> None:
    group = command(
        sub,
        "templates",
        None,
        "preview templates and send test messages",
        "lifecycle templates preview new_user_welcome_sms --locale en",
    )
    tsub = actions(group, "templates_command")
    pv = command(
        tsub,
        "preview",
        cmd_preview,
        "render a template with sample data or a real user's profile",
        "lifecycle templates preview new_user_last_chance_email --user u1 --html",
    )
    pv.add_argument("template")
    pv.add_argument("--user", help="render for this user (default: sample data)")
    pv.add_argument("--locale", help="e.g. zh-CN or en (default: the user's, else zh-CN)")
    pv.add_argument("--html", action="store_true", help="also print an email's HTML")
    pv.add_argument("--sample", action="store_true", help="sample data (the default)")
    st = command(
        tsub,
        "send-test",
        cmd_send_test,
        "send a template with sample data to one address through the configured channel",
        "lifecycle templates send-test new_user_welcome_sms --to +8613800138000",
    )
    st.add_argument("template")
    st.add_argument("--to", required=True, help="phone (E.164), email address or push token")
    st.add_argument("--locale")
    quick = command(
        sub,
        "send-test",
        cmd_send_test,
        "send a test message on a channel (its sample template) through the configured provider",
        "lifecycle send-test --channel sms --to +8613800138000",
    )
    quick.add_argument("--channel", choices=kinds.names(), required=True)
    quick.add_argument("--to", required=True, help="phone (E.164), email address or push token")
    quick.add_argument("--template", help="default: the channel's new-user template")
    quick.add_argument("--locale")
