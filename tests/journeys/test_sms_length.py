"""Validation warns when an SMS renders to more segments than a marketer would expect."""

from __future__ import annotations

from pathlib import Path

from journeys.validate import load_journey
from message_templates.render import TemplateRenderer

JOURNEY = """\
id: long_sms
name: long sms
trigger: {event: user_signed_up}
steps:
  - {id: hello, type: send, channel: sms, template: %s}
"""


def journey_with(tmp_path: Path, body: str) -> list[str]:
    templates = tmp_path / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "hello_sms.yaml").write_text(
        f'channel: sms\nlocales:\n  zh-CN:\n    body: "{body}"\n  en:\n    body: "Hi"\n',
        encoding="utf-8",
    )
    path = tmp_path / "long_sms.yaml"
    path.write_text(JOURNEY % "hello_sms", encoding="utf-8")
    warnings: list = []
    load_journey(path, TemplateRenderer(templates), warnings=warnings)
    return [str(w) for w in warnings]


def test_a_three_segment_sms_is_a_warning(tmp_path: Path):
    (warning,) = journey_with(tmp_path, "满50减20，" * 30)
    assert "warning: steps[0].template" in warning and "SMS segments" in warning


def test_a_short_sms_is_fine(tmp_path: Path):
    assert journey_with(tmp_path, "欢迎！") == []
