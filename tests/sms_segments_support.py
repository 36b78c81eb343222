"""A long Chinese SMS template, for the tests of what a send is billed as."""

from __future__ import annotations

from pathlib import Path

from message_templates.render import TemplateRenderer

# 144 Chinese characters, then " 回T退订": 149 UCS-2 characters, 3 segments of 67.
LONG_BODY = "新人专享满五十减二十优惠券已到账" * 9
SEGMENTS = 3


def long_sms_renderer(directory: Path, name: str) -> TemplateRenderer:
    """The templates of ``directory``, where ``name`` is an SMS of :data:`LONG_BODY`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.yaml").write_text(
        "channel: sms\n"
        "description: A long message, sent as several segments.\n"
        "locales:\n"
        "  zh-CN:\n"
        f'    body: "{LONG_BODY}"\n',
        encoding="utf-8",
    )
    return TemplateRenderer(directory)
