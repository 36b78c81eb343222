"""How many segments an SMS is billed as."""

from __future__ import annotations

import pytest

from message_templates.sms import sms_segments


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("中" * 70, 1),
        ("中" * 71, 2),
        ("中" * 134, 2),
        ("中" * 135, 3),
        ("¥@£èΔ_" * 26 + "ab", 1),  # 158 characters, all in the GSM basic set
    ],
)
def test_gsm_and_ucs2_limits(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_gsm_extension_characters_count_twice() -> None:
    assert sms_segments("€" * 80) == 1
    assert sms_segments("€" * 81) == 2
    assert sms_segments("a" * 158 + "{") == 1
    assert sms_segments("a" * 159 + "}") == 2


def test_one_character_outside_gsm_switches_to_ucs2() -> None:
    assert sms_segments("a" * 70 + "’") == 2  # a curly apostrophe is not GSM-7
    assert sms_segments("a" * 69 + "’") == 1


def test_emoji_count_as_two_code_units() -> None:
    assert sms_segments("🎉" * 35) == 1
    assert sms_segments("🎉" * 35 + "a") == 2


def test_a_character_is_never_split_across_segments() -> None:
    # 306 septets would fill exactly two segments, but the euro sign cannot straddle them.
    assert sms_segments("a" * 152 + "€" + "a" * 152) == 3
    assert sms_segments("中" * 66 + "🎉" + "中" * 66) == 3
