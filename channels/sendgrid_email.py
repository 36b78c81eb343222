"""Email through Twilio SendGrid's v3 Mail Send API, with the official ``sendgrid`` SDK.

SendGrid answers ``POST /v3/mail/send`` with ``202 Accepted``, an empty body and the
message's id in the ``X-Message-Id`` header; errors carry
``{"errors": [{"message", "field", "help"}]}``. Every message carries our ledger key in its
personalization's ``custom_args`` (:data:`MESSAGE_KEY_ARG`; the v3 spec's top-level
``custom_args`` is a string), which SendGrid echoes as a top-level field of each Event
Webhook event. A 202 is an acceptance even without ``X-Message-Id``: the ledger then knows
the mail by our key alone.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Sequence

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Asm,
    Category,
    CustomArg,
    From,
    GroupId,
    Header,
    Mail,
    ReplyTo,
    To,
)

from channels.base import (
    OutboundMessage,
    PermanentSendError,
    SendResult,
    TransientSendError,
    parse_retry_after,
    scrub,
)

# The custom argument holding OutboundMessage.key; the Event Webhook handler reads it back.
MESSAGE_KEY_ARG = "lifecycle_key"
MAX_CATEGORIES = 10  # SendGrid refuses more


class SendGridEmailChannel:
    """Sends email with ``SendGridAPIClient.send``; one SDK client per instance.

    Args:
        api_key: The SendGrid API key (sent as ``Authorization: Bearer``).
        from_email: The verified sender address.
        from_name: The sender's display name.
        reply_to: Where replies go, when not to the sender.
        asm_group_id: The unsubscribe group (ASM) marketing mail belongs to.
        host: The API host; None for SendGrid itself (tests use a local server).
        unsubscribe_url_for: The recipient's one-click unsubscribe URL when the message
            carries none in ``OutboundMessage.unsubscribe_url``.
        categories: Categories added to every message, before the message's own tags.
        timeout: Seconds to wait for SendGrid's answer; a timeout is transient.
    """

    name = "sendgrid"

    def __init__(
        self,
        api_key: str,
        *,
        from_email: str,
        from_name: str | None = None,
        reply_to: str | None = None,
        asm_group_id: int | None = None,
        host: str | None = None,
        unsubscribe_url_for: Callable[[OutboundMessage], str | None] | None = None,
        categories: Sequence[str] = (),
        timeout: float = 10.0,
    ):
        self._client = SendGridAPIClient(
            api_key, host=(host or "https://api.sendgrid.com").rstrip("/")
        )
        # python_http_client passes its timeout on to every request it builds.
        self._client.client.timeout = timeout
        self._from = (from_email, from_name)
        self._reply_to = reply_to
        self._asm_group_id = asm_group_id
        self._unsubscribe_url_for = unsubscribe_url_for
        self._categories = tuple(categories)

    def send(self, message: OutboundMessage) -> SendResult:
        """Hand the email to SendGrid.

        Returns:
            The result, with SendGrid's ``X-Message-Id`` when its 202 had one.

        Raises:
            PermanentSendError: The message has no subject or body (``invalid_argument``,
                not sent), SendGrid refused it (400) or our key (401/403).
            TransientSendError: Rate limited (with ``Retry-After``), SendGrid failed, or the
                network did.
        """
        if not (message.subject or "").strip():
            raise PermanentSendError("invalid_argument", "an email needs a subject")
        if not message.body and not message.html:
            raise PermanentSendError("invalid_argument", "an email needs a text or HTML body")
        try:
            response = self._client.send(self.mail(message))
        except HTTPError as exc:
            raise sendgrid_error(exc.status_code, exc.body, exc.headers) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
            raise TransientSendError(f"sendgrid unreachable: {type(exc).__name__}") from None
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        # Any 2xx means SendGrid took the mail; raising here would make Temporal send it again.
        return SendResult(
            provider=self.name, provider_message_id=str(message_id) if message_id else None
        )

    def mail(self, message: OutboundMessage) -> Mail:
        """The SDK's ``Mail`` for ``message``: text then HTML, key, categories, unsubscribe."""
        mail = Mail(
            from_email=From(*self._from),
            to_emails=To(message.to),
            subject=message.subject,
            plain_text_content=message.body or None,
            html_content=message.html or None,
        )
        if self._reply_to:
            mail.reply_to = ReplyTo(self._reply_to)
        # On the (only) personalization: the spec wants a string for the top-level one.
        mail.custom_arg = CustomArg(MESSAGE_KEY_ARG, message.key, p=0)
        categories = list(dict.fromkeys((*self._categories, *message.tags)))[:MAX_CATEGORIES]
        for category in reversed(categories):  # the SDK inserts each at the front
            mail.add_category(Category(category))
        if self._asm_group_id is not None:
            mail.asm = Asm(GroupId(self._asm_group_id))
        url = message.unsubscribe_url
        if url is None and self._unsubscribe_url_for is not None:
            url = self._unsubscribe_url_for(message)
        if url:
            # RFC 8058 one-click: mail clients POST to the URL without showing a page.
            mail.add_header(Header("List-Unsubscribe", f"<{url}>"))
            mail.add_header(Header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        return mail


def sendgrid_error(
    status: int, body: bytes | str | None, headers: object = None
) -> PermanentSendError | TransientSendError:
    """Classify a SendGrid error answer from its status, JSON body and headers."""
    detail = _first_error(body)
    described = f"sendgrid {status}" + (f": {detail}" if detail else "")
    if status == 429:
        return TransientSendError(
            f"sendgrid rate limit ({described})", retry_after=_retry_after(headers)
        )
    if status >= 500:
        return TransientSendError(
            f"sendgrid unavailable ({described})", retry_after=_retry_after(headers)
        )
    if status in (401, 403):
        return PermanentSendError("provider_auth", described)
    return PermanentSendError("rejected", described)


def _first_error(body: bytes | str | None) -> str:
    if not body:
        return ""
    try:
        errors = json.loads(body)["errors"]
        first = errors[0]
        text = str(first.get("message") or "")
        if first.get("field") not in (None, "null"):
            text = f"{text} (field {first['field']})"
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return ""
    return scrub(text)


def _retry_after(headers: object) -> float | None:
    get = getattr(headers, "get", None)
    if get is None:
        return None
    retry_after = parse_retry_after(get("Retry-After"))
    if retry_after is not None:
        return retry_after
    # SendGrid's own rate-limit header: the Unix time the limit resets.
    reset = get("X-RateLimit-Reset")
    try:
        return None if reset is None else max(0.0, float(reset) - time.time())
    except ValueError:
        return None
