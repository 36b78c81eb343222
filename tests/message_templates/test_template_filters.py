"""The filters templates use for money and dates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from message_templates.errors import TemplateError
from message_templates.filters import yuan
from message_templates.render import TemplateRenderer


@pytest.mark.parametrize(
    ("fen", "text"),
    [(2000, "¥20"), (5000, "¥50"), (1990, "¥19.90"), (5, "¥0.05"), (0, "¥0"), (-500, "-¥5")],
)
def test_yuan(fen: int, text: str) -> None:
    assert yuan(fen) == text


@pytest.mark.parametrize("value", [19.9, "2000", True, None])
def test_yuan_refuses_anything_but_integer_fen(value: Any) -> None:
    with pytest.raises(TypeError):
        yuan(value)


def render(tmp_path: Path, body: str, *, locale: str = "zh-CN", **user: Any) -> str:
    quoted = json.dumps(body, ensure_ascii=False)
    (tmp_path / "t.yaml").write_text(
        f"channel: sms\nlocales:\n  zh-CN: {{body: {quoted}}}\n  en: {{body: {quoted}}}\n",
        encoding="utf-8",
    )
    context = {
        "user": {"timezone": "Asia/Shanghai", **user},
        "at": datetime(2025, 12, 31, 16, 30, tzinfo=UTC),
    }
    renderer = TemplateRenderer(tmp_path, sms_opt_out_text={})
    return renderer.render("t", channel="sms", locale=locale, context=context).body


def test_local_datetime_uses_the_users_time_zone(tmp_path: Path) -> None:
    assert render(tmp_path, "{{ at | local_datetime }}") == "2026-01-01 00:30"
    assert render(tmp_path, "{{ at | local_datetime }}", timezone="UTC") == "2025-12-31 16:30"
    assert render(tmp_path, "{{ at | local_datetime('%H:%M') }}", timezone="Asia/Tokyo") == "01:30"


def test_local_date_reads_naturally_per_language(tmp_path: Path) -> None:
    assert render(tmp_path, "{{ at | local_date }}") == "1月1日"
    assert render(tmp_path, "{{ at | local_date }}", locale="en") == "2026-01-01"
    assert render(tmp_path, "{{ at | local_date('%d/%m') }}", locale="en") == "01/01"


def test_a_missing_or_bad_time_zone_falls_back(tmp_path: Path) -> None:
    assert render(tmp_path, "{{ at | local_datetime }}", timezone=None) == "2026-01-01 00:30"
    assert render(tmp_path, "{{ at | local_datetime }}", timezone="../../etc") == (
        "2026-01-01 00:30"
    )
    other_default = tmp_path / "other"
    other_default.mkdir()
    (other_default / "t.yaml").write_text(
        "channel: sms\nlocales:\n  zh-CN: {body: '{{ at | local_datetime }}'}\n", encoding="utf-8"
    )
    renderer = TemplateRenderer(other_default, sms_opt_out_text={}, default_timezone="UTC")
    context = {"user": {}, "at": datetime(2025, 12, 31, 16, 30, tzinfo=UTC)}
    assert renderer.render("t", channel="sms", locale=None, context=context).body == (
        "2025-12-31 16:30"
    )


def test_a_non_date_is_a_template_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="datetime"):
        render(tmp_path, "{{ user.timezone | local_date }}", timezone="not a date")
