"""Message templates: YAML files of sandboxed Jinja, rendered into a RenderedMessage.

Rendering is separate from sending: this package turns a template name, a channel, a locale
and a context into text; ``channels`` send it.

A template is ``templates/<name>.yaml``::

    channel: sms            # sms | email | push
    description: ...        # optional, for marketers
    locales:
      zh-CN:
        body: "..."         # sms: body; push: title, body, optional link;
      en:                   # email: subject, html, text
        body: "..."

Templates see the engine's context (``user``: id, name, member_tier, locale, timezone;
``coupon``: code, amount_fen, min_spend_fen, expires_at; ``trigger``: event, properties,
timestamp; ``unsubscribe_url``), ``locale`` (the locale being rendered) and the filters
``money`` / ``yuan`` (fen → ``¥20``, ``¥20.50``, shaped for the locale by babel),
``local_datetime`` and ``local_date`` (in ``user.timezone``; ``local_date`` as the locale writes
a day, ``3月9日`` / ``Mar 9``).
"""

from message_templates.errors import (
    InvalidTemplateError,
    SandboxViolationError,
    TemplateError,
    UndefinedVariableError,
    UnknownTemplateError,
    WrongChannelError,
)
from message_templates.render import RenderedMessage, TemplateRenderer
from message_templates.sample import sample_context
from message_templates.sms import sms_segments

__all__ = [
    "InvalidTemplateError",
    "RenderedMessage",
    "SandboxViolationError",
    "TemplateError",
    "TemplateRenderer",
    "UndefinedVariableError",
    "UnknownTemplateError",
    "WrongChannelError",
    "sample_context",
    "sms_segments",
]
