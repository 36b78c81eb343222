"""The ``/u/{token}`` pages, in zh-CN and English: confirm, done, and a link we cannot honour.

Self-contained (no scripts, no external styles or images) and never cached or framed.
"""

from __future__ import annotations

from html import escape

from fastapi.responses import HTMLResponse

from message_templates.unsubscribe_links import UnsubscribeClaim

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


def _notice(
    title: str, heading: str, zh: str, en: str, *, after: str = "", status: int = 200
) -> HTMLResponse:
    """A page of one heading and one sentence in each language (already escaped)."""
    return _page(
        title,
        f'<h1>{heading}</h1><p>{zh}</p><p class="en" lang="en">{en}</p>{after}',
        status=status,
    )


def _claim_page(
    claim: UnsubscribeClaim, title: tuple[str, str], zh: str, en: str, *, after: str = ""
) -> HTMLResponse:
    """A page about what the link stops: ``{what}`` in the sentences names it."""
    zh_what, en_what = (escape(text) for text in _what(claim))
    return _notice(
        title[0], title[1], zh.format(what=zh_what), en.format(what=en_what), after=after
    )


_ONE_CLICK_FORM = (
    '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
    '<button type="submit">确认退订 / Unsubscribe</button></form>'
)


def confirm_page(claim: UnsubscribeClaim) -> HTMLResponse:
    """The page a followed link shows: what will stop, and one button (a POST here)."""
    title = ("退订 / Unsubscribe", "退订确认 / Unsubscribe")
    zh, en = "确认后，您将不再收到我们的{what}。", "You will no longer receive our {what}."
    return _claim_page(claim, title, zh, en, after=_ONE_CLICK_FORM)


def done_page(claim: UnsubscribeClaim) -> HTMLResponse:
    """The answer to a POST: the user is unsubscribed."""
    title = ("已退订 / Unsubscribed", "已退订 / Unsubscribed")
    zh = "您已退订，今后不会再收到我们的{what}。"
    en = "You have been unsubscribed and will no longer receive our {what}."
    return _claim_page(claim, title, zh, en)


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
    return _notice("链接无效 / Invalid link", "链接无效 / Invalid link", zh, en, status=400)
