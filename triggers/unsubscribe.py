"""The ``/u/{token}`` unsubscribe pages.

A link is ``{public_base_url}/u/{token}``, signed as ``message_templates.unsubscribe_links``
says (ids only, never an address).

``GET /u/{token}`` shows a confirmation page (zh-CN and English) and changes nothing, so a
mail scanner that follows links unsubscribes nobody. ``POST /u/{token}`` unsubscribes at once:
the page's button, and mail clients doing RFC 8058 one-click (body
``List-Unsubscribe=One-Click``). A tampered or expired token answers 400 and changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from config import Settings
from message_templates.unsubscribe_links import (
    BadUnsubscribeToken,
    UnsubscribeClaim,
    UnsubscribeLinks,
)
from store.db import SessionFactory, transaction
from store.webhooks import set_consent
from triggers.ingest import Clock, utc_now

log = logging.getLogger(__name__)

UNSUBSCRIBE_SOURCE = "unsubscribe_link"


# --- pages -----------------------------------------------------------------------------------

_CHANNEL_NAMES = {
    "sms": ("短信", "text messages"),
    "email": ("邮件", "emails"),
    "push": ("推送通知", "push notifications"),
}
_TOPIC_NAMES = {"marketing": ("营销", "marketing"), "transactional": ("服务", "service")}
# Nothing from elsewhere: no scripts, no external styles or images, forms post here only.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_STYLE = (
    "body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;"
    "max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222;line-height:1.6}"
    "h1{font-size:1.3rem}p.en{color:#555}"
    "button{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:.3rem;"
    "background:#c0392b;color:#fff;cursor:pointer}"
)


def _page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    html = (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )
    return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)


def _what(claim: UnsubscribeClaim) -> tuple[str, str]:
    zh_channel, en_channel = _CHANNEL_NAMES.get(claim.channel, (claim.channel, claim.channel))
    zh_topic, en_topic = _TOPIC_NAMES.get(claim.topic, (claim.topic, claim.topic))
    return f"{zh_topic}{zh_channel}", f"{en_topic} {en_channel}"


def confirm_page(claim: UnsubscribeClaim) -> HTMLResponse:
    """The page a followed link shows: what will stop, and one button (a POST here)."""
    zh, en = (escape(text) for text in _what(claim))
    return _page(
        "退订 / Unsubscribe",
        "<h1>退订确认 / Unsubscribe</h1>"
        f"<p>确认后，您将不再收到我们的{zh}。</p>"
        f'<p class="en" lang="en">You will no longer receive our {en}.</p>'
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">确认退订 / Unsubscribe</button></form>',
    )


def done_page(claim: UnsubscribeClaim) -> HTMLResponse:
    """The answer to a POST: the user is unsubscribed."""
    zh, en = (escape(text) for text in _what(claim))
    return _page(
        "已退订 / Unsubscribed",
        "<h1>已退订 / Unsubscribed</h1>"
        f"<p>您已退订，今后不会再收到我们的{zh}。</p>"
        f'<p class="en" lang="en">You have been unsubscribed and will no longer receive '
        f"our {en}.</p>",
    )


def error_page(reason: str) -> HTMLResponse:
    """400: the link is expired or not one of ours; nothing was changed."""
    if reason == "expired":
        zh = "此退订链接已过期，未做任何更改。请使用最近一条消息中的退订链接。"
        en = (
            "This unsubscribe link has expired, so nothing was changed. Please use the link "
            "in a more recent message."
        )
    else:
        zh = "此退订链接无效，未做任何更改。请确认链接已完整复制。"
        en = (
            "This unsubscribe link is not valid, so nothing was changed. Please check that "
            "the whole link was copied."
        )
    return _page(
        "链接无效 / Invalid link",
        f'<h1>链接无效 / Invalid link</h1><p>{zh}</p><p class="en" lang="en">{en}</p>',
        status=400,
    )


# --- routes ----------------------------------------------------------------------------------


def unsubscribe_router(
    settings: Settings,
    *,
    session_factory: SessionFactory,
    clock: Clock | None = None,
    links: UnsubscribeLinks | None = None,
) -> APIRouter:
    """``GET`` and ``POST /u/{token}``.

    Args:
        settings: the secret and the public base URL (unless ``links`` is given).
        session_factory: the POST changes consent in one transaction from this factory.
        clock: decides expiry and stamps the consent change; defaults to the UTC wall clock.
        links: the token reader; defaults to one built from ``settings``.
    """
    now: Clock = clock or utc_now
    reader = links or UnsubscribeLinks.from_settings(settings)
    router = APIRouter()

    def unsubscribe(claim: UnsubscribeClaim, at: datetime) -> None:
        with transaction(session_factory) as session:
            changed = set_consent(
                session,
                user_ids=[claim.user_id],
                channel=claim.channel,
                topics=[claim.topic],
                status="unsubscribed",
                source=UNSUBSCRIBE_SOURCE,
                at=at,
            )
        log.info(
            "unsubscribe link: user %s %s/%s (message %s, %s)",
            claim.user_id,
            claim.channel,
            claim.topic,
            claim.message_id,
            "done" if changed else "unknown user",
        )

    @router.get("/u/{token}", response_class=HTMLResponse)
    async def confirm(token: str) -> HTMLResponse:
        try:
            claim = reader.read(token, now=now())
        except BadUnsubscribeToken as exc:
            return error_page(exc.reason)
        return confirm_page(claim)

    @router.post("/u/{token}", response_class=HTMLResponse)
    async def one_click(token: str) -> HTMLResponse:
        # The body (List-Unsubscribe=One-Click) is not required: the token is the authority,
        # and mail clients differ in how they encode it.
        at = now()
        try:
            claim = reader.read(token, now=at)
        except BadUnsubscribeToken as exc:
            log.info("unsubscribe link refused: %s", exc.reason)
            return error_page(exc.reason)
        await run_in_threadpool(unsubscribe, claim, at)
        return done_page(claim)

    return router
