"""The filters templates use for money and dates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from message_templates.errors import TemplateError
from message_templates.filters import format_money
from message_templates.render import TemplateRenderer


@pytest.mark.parametrize("locale", ["zh-CN", "en", "en-US"])
@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (2000, "¥20"),
        (2050, "¥20.50"),
        (1990, "¥19.90"),
        (5, "¥0.05"),
        (0, "¥0"),
        (-500, "-¥5"),
        (123456705, "¥1,234,567.05"),
    ],
)
def test_money_in_yuan_reads_the_same_in_chinese_and_english(
    fen: int, text: str, locale: str
) -> None:
    # English CLDR writes CN¥ (to tell it from the yen); a customer in China reads ¥.
    assert format_money(fen, locale=locale, home_locale="zh-CN") == text


def test_money_takes_its_shape_from_the_locale_and_its_symbol_from_home() -> None:
    assert format_money(123450, locale="de-DE", home_locale="zh-CN") == "1.234,50\xa0¥"
    assert format_money(2000, locale="en", home_locale="en") == "CN¥20"
    assert format_money(1999, currency="USD", locale="en-US") == "$19.99"
    assert format_money(500, currency="JPY", locale="ja") == "￥500"


@pytest.mark.parametrize("value", [19.9, "2000", True, None])
def test_money_refuses_anything_but_integer_fen(value: Any) -> None:
    with pytest.raises(TypeError, match="integer amount in fen"):
        format_money(value, locale="zh-CN")


def test_an_unknown_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown currency 'RMB'"):
        format_money(2000, currency="RMB", locale="zh-CN")


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


def test_money_filters_follow_the_rendered_locale(tmp_path: Path) -> None:
    body = "{{ 5000 | yuan }}-{{ 2050 | money }}/{{ 1999 | money('USD') }}"
    assert render(tmp_path, body) == "¥50-¥20.50/US$19.99"
    assert render(tmp_path, body, locale="en") == "¥50-¥20.50/US$19.99"
    assert render(tmp_path, body, locale="fr") == "¥50-¥20.50/US$19.99"  # zh-CN text, fallback


def test_local_date_reads_naturally_per_language(tmp_path: Path) -> None:
    assert render(tmp_path, "{{ at | local_date }}") == "1月1日"
    assert render(tmp_path, "{{ at | local_date }}", locale="en") == "Jan 1"
    assert render(tmp_path, "{{ at | local_date }}", locale="en", timezone="UTC") == "Dec 31"
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
