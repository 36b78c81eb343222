"""Messages to send in channel tests."""

from __future__ import annotations

from typing import Any

from channels.base import OutboundMessage


def sms(
    to: str = "+8613800138000", body: str = "欢迎！回T退订", key: str = "k-sms"
) -> OutboundMessage:
    return OutboundMessage(key=key, channel="sms", to=to, body=body)


def email(
    *,
    key: str = "k-email",
    to: str = "u1@example.com",
    subject: str | None = "最后机会：你的¥20新人券即将到期",
    body: str = "券码 ABC123",
    html: str | None = "<p>券码 <b>ABC123</b></p>",
    unsubscribe_url: str | None = None,
    tags: tuple[str, ...] = (),
) -> OutboundMessage:
    return OutboundMessage(
        key=key,
        channel="email",
        to=to,
        body=body,
        subject=subject,
        html=html,
        unsubscribe_url=unsubscribe_url,
        tags=tags,
    )


def push(
    *,
    key: str = "k-push",
    token: str = "device-token-1",
    title: str | None = "新人券还没用",
    body: str = "¥20 券 5 天后到期",
    data: dict[str, Any] | None = None,
) -> OutboundMessage:
    return OutboundMessage(
        key=key, channel="push", to=token, body=body, title=title, data=data or {}
    )
