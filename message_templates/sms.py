"""SMS arithmetic: how many segments a text is billed as, and the opt-out suffix.

GSM-7 texts fit 160 characters in one segment and 153 per segment once split (the rest of
each segment carries the joining header); anything outside GSM-7 goes as UCS-2, 70 and 67
UTF-16 code units. A character is never split across segments, so an extension character
or an emoji can push a long text into one more segment than plain division suggests.
"""

from __future__ import annotations

# GSM 03.38 basic character set (without ESC, which only introduces the extension table).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs two septets (ESC + the character).
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can be sent in the GSM-7 alphabet."""
    return all(char in GSM_BASIC or char in GSM_EXTENSION for char in text)


def sms_segments(text: str) -> int:
    """The number of SMS segments ``text`` is sent (and billed) as.

    Args:
        text: The full message, opt-out text included.

    Returns:
        At least 1.
    """
    if is_gsm7(text):
        widths = [2 if char in GSM_EXTENSION else 1 for char in text]
        single, part = GSM_SINGLE, GSM_PART
    else:
        widths = [2 if ord(char) > 0xFFFF else 1 for char in text]  # surrogate pairs
        single, part = UCS2_SINGLE, UCS2_PART
    total = sum(widths)
    if total <= single:
        return 1
    segments, used = 1, 0
    for width in widths:
        if used + width > part:
            segments, used = segments + 1, 0
        used += width
    return segments


def with_opt_out(body: str, opt_out: str | None) -> str:
    """Append the opt-out text after a space, unless the body already ends with it."""
    if not opt_out or body.endswith(opt_out):
        return body
    return f"{body} {opt_out}"
