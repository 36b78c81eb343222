"""SMS through Twilio's Programmable Messaging API, with the official ``twilio`` SDK.

Twilio answers ``POST /2010-04-01/Accounts/{sid}/Messages.json`` with the message resource
(its ``sid`` is the provider id) or an error ``{"code", "message", "more_info", "status"}``.
The error codes that say something about the recipient are permanent; rate limits, server
errors and network failures are transient.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from channels.base import (
    OutboundMessage,
    PermanentSendError,
    SendResult,
    TransientSendError,
    parse_retry_after,
    scrub,
)

# Twilio error codes that are about the recipient, not about us.
PERMANENT_CODES = {
    21211: "invalid_number",  # 'To' number is not a valid phone number
    21614: "invalid_number",  # 'To' number is not a valid mobile number
    21610: "opted_out",  # the recipient replied STOP: Twilio blocks the number
    21408: "unreachable",  # permission to send to this region is not enabled
    21612: "unreachable",  # the 'To' number cannot be reached from this sender
}


class _HeaderKeepingHttpClient(TwilioHttpClient):
    """Keeps each thread's last response: Twilio's exceptions drop the response headers.

    ``TwilioRestException`` carries the status, error code and message but not the headers,
    so a 429's ``Retry-After`` is read from the response this client kept. Per thread,
    because one channel serves many activity threads at once.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._local = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self._local.response = None
        response = super().request(*args, **kwargs)
        self._local.response = response
        return response

    def last_header(self, name: str) -> str | None:
        response = getattr(self._local, "response", None)
        if response is None or response.headers is None:
            return None
        value = response.headers.get(name)  # requests' headers: case-insensitive
        return None if value is None else str(value)


class TwilioSmsChannel:
    """Sends SMS with ``client.messages.create``; one SDK client per instance.

    Args:
        account_sid: The account (``AC…``) the messages are sent from.
        auth_token: Its auth token (HTTP Basic password).
        from_number: The sender (E.164 number, short code or alphanumeric id).
        messaging_service_sid: A Messaging Service (``MG…``) picking the sender instead;
            at least one of the two is needed.
        status_callback: URL Twilio posts delivery status changes to.
        validity_period: Seconds a message may wait in Twilio's queue before it is dropped.
        base_url: Where the API lives; None for Twilio itself (tests use a local server).
        timeout: Seconds to wait for Twilio's answer; a timeout is transient.
    """

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        validity_period: int | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
    ):
        if not from_number and not messaging_service_sid:
            raise ValueError("TwilioSmsChannel needs from_number or messaging_service_sid")
        self._http = _HeaderKeepingHttpClient(timeout=timeout)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        if base_url:
            # The SDK's own host switch: every Api request is built from this base URL.
            self._client.api.base_url = base_url.rstrip("/")
            # TWILIO_EDGE / TWILIO_REGION would rewrite the host into *.twilio.com.
            self._client.edge = None
            self._client.region = None
        self._options: dict[str, Any] = {}
        if from_number:
            self._options["from_"] = from_number
        if messaging_service_sid:
            self._options["messaging_service_sid"] = messaging_service_sid
        if status_callback:
            self._options["status_callback"] = status_callback
        if validity_period is not None:
            self._options["validity_period"] = validity_period

    def send(self, message: OutboundMessage) -> SendResult:
        """Create the message at Twilio.

        Raises:
            PermanentSendError: Twilio refused the recipient or the request.
            TransientSendError: Rate limited (with ``Retry-After``), Twilio failed, or the
                network did.
        """
        try:
            created = self._client.messages.create(
                to=message.to, body=message.body, **self._options
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            detail = exc.msg if isinstance(exc, TwilioRestException) else exc.title
            # ``from None``: the SDK's exception text may quote the phone number.
            raise twilio_error(
                exc.status,
                exc.code,
                scrub(str(detail)),
                retry_after=parse_retry_after(self._http.last_header("Retry-After")),
            ) from None
        except requests.RequestException as exc:
            raise TransientSendError(f"twilio unreachable: {type(exc).__name__}") from None
        if not created.sid:
            raise TransientSendError("twilio answered without a message sid")
        return SendResult(provider=self.name, provider_message_id=created.sid)


def twilio_error(
    status: int, code: int | None, detail: str = "", *, retry_after: float | None = None
) -> PermanentSendError | TransientSendError:
    """Classify a Twilio error answer (HTTP status and Twilio error code)."""
    described = f"twilio {code or status}" + (f": {detail}" if detail else "")
    if status == 429:
        return TransientSendError(f"twilio rate limit ({described})", retry_after=retry_after)
    if status >= 500:
        return TransientSendError(f"twilio unavailable ({described})", retry_after=retry_after)
    if code in PERMANENT_CODES:
        return PermanentSendError(PERMANENT_CODES[code], described)
    if status in (401, 403):
        return PermanentSendError("provider_auth", described)
    return PermanentSendError("rejected", described)
