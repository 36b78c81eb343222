"""SMS through Twilio's Programmable Messaging API, with the official ``twilio`` SDK.

Twilio answers ``POST /2010-04-01/Accounts/{sid}/Messages.json`` with the message resource
(its ``sid`` is the provider id) or an error ``{"code", "message", "more_info", "status"}``.
The error codes that say something about the recipient are permanent; rate limits, server
errors and network failures are transient.

Twilio takes no idempotency key. When a worker dies after Twilio accepted a message but
before the ledger recorded it, the retried attempt first looks at the messages recently
created for the same number (:meth:`TwilioSmsChannel.find_sent`) and adopts the one that is
this message (same sender and body, created since the attempt began) instead of sending again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

import requests
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
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


T = TypeVar("T")

# How far back of the attempt's start a message Twilio created still counts as this one:
# Twilio's clock and ours may disagree by a little, and its dates have whole seconds.
CLOCK_SLACK = timedelta(minutes=5)
# Messages to one number looked at (newest first): one page of Twilio's list.
RECENT_PAGE = 20


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
    # A status callback can beat the sid's storing (see ``channels.base.HoldsEarlyStatuses``).
    holds_early_statuses: Literal[True] = True

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
        self._from_number = from_number
        self._messaging_service_sid = messaging_service_sid

    def send(self, message: OutboundMessage) -> SendResult:
        """Create the message at Twilio.

        Raises:
            PermanentSendError: Twilio refused the recipient or the request.
            TransientSendError: Rate limited (with ``Retry-After``), Twilio failed, or the
                network did.
        """
        created = self._call(
            lambda: self._client.messages.create(to=message.to, body=message.body, **self._options)
        )
        if not created.sid:
            raise TransientSendError("twilio answered without a message sid")
        return SendResult(provider=self.name, provider_message_id=created.sid)

    def find_sent(self, message: OutboundMessage, *, since: datetime) -> SendResult | None:
        """The message an earlier attempt of this send created at Twilio, if there is one.

        Lists the newest messages to ``message.to`` (Twilio's ``GET .../Messages.json`` with
        ``To``; not ``DateSent>``, which skips messages still queued) and picks the oldest
        outbound one created since ``since`` with this body and sender.

        Args:
            message: The message about to be sent again.
            since: When the first attempt began (the ledger row became ``sending``).

        Returns:
            The earlier message's sid, or None when Twilio has no such message.

        Raises:
            TransientSendError: Twilio could not answer now; sending blind could double it.
            PermanentSendError: Twilio refused the request (credentials, for instance).
        """
        recent = self._call(lambda: self._client.messages.list(to=message.to, limit=RECENT_PAGE))
        earliest = since - CLOCK_SLACK
        for sent in reversed(recent):  # Twilio lists newest first; the first one sent wins
            if (
                sent.sid
                and sent.direction == "outbound-api"
                and sent.date_created is not None
                and sent.date_created >= earliest
                and sent.body == message.body
                and self._same_sender(sent.from_, sent.messaging_service_sid)
            ):
                return SendResult(provider=self.name, provider_message_id=sent.sid)
        return None

    def _call(self, request: Callable[[], T]) -> T:
        """Run one SDK request; Twilio's and the network's failures become ours."""
        try:
            return request()
        except (TwilioRestException, TwilioServiceException) as exc:
            detail = exc.msg if isinstance(exc, TwilioRestException) else exc.title
            # ``from None``: the SDK's exception text may quote the phone number.
            raise twilio_error(
                exc.status,
                exc.code,
                scrub(str(detail)),
                retry_after=parse_retry_after(self._http.last_header("Retry-After")),
            ) from None
        except TwilioException as exc:  # a page of a list the SDK could not read
            response = exc.args[1] if len(exc.args) > 1 else None
            status = response.status_code if isinstance(response, Response) else 500
            raise twilio_error(
                status,
                _error_code(response),
                retry_after=parse_retry_after(self._http.last_header("Retry-After")),
            ) from None
        except requests.RequestException as exc:
            raise TransientSendError(f"twilio unreachable: {type(exc).__name__}") from None

    def _same_sender(self, from_number: str | None, messaging_service_sid: str | None) -> bool:
        if self._messaging_service_sid:
            return messaging_service_sid == self._messaging_service_sid
        return from_number == self._from_number


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


def _error_code(response: object) -> int | None:
    """Twilio's error code from an error answer's JSON body, if it has one."""
    try:
        code = json.loads(response.text).get("code") if isinstance(response, Response) else None
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None
