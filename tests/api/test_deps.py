"""The write key checked as Segment libraries send it: HTTP Basic, the key as the user name."""

from __future__ import annotations

import base64

import pytest

from api.deps import check_write_key


def _basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (_basic("key"), True),
        ("basic " + base64.b64encode(b"key:").decode(), True),
        (_basic("key", "ignored"), True),
        (_basic("key2"), False),
        (_basic("ke"), False),
        ("Basic !!!", False),
        ("Bearer key", False),
        (None, False),
        ("", False),
    ],
)
def test_check_write_key(header: str | None, ok: bool) -> None:
    assert (check_write_key(header, "key") is None) is ok
