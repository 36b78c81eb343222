"""Push notifications through Firebase Cloud Messaging's HTTP v1 API, with httpx.

``POST {base_url}/v1/projects/{project_id}/messages:send`` with
``{"message": {"token", "notification": {"title", "body"}, "data": {...}, "android": {...},
"apns": {...}}}`` and an OAuth2 bearer token; FCM answers
``{"name": "projects/{project_id}/messages/{id}"}`` or a Google error
``{"error": {"code", "message", "status", "details": [{"errorCode": ...}, ...]}}``.

A token is dead (``unregistered_token``) when FCM says ``UNREGISTERED``, ``SENDER_ID_MISMATCH``
(the token belongs to another Firebase project) or ``INVALID_ARGUMENT`` about the
``message.token`` field itself (not a registration token at all).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
from google.auth import exceptions as google_exceptions
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from channels.base import (
    OutboundMessage,
    PermanentSendError,
    SendResult,
    TransientSendError,
    parse_retry_after,
    scrub,
)

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
# Data keys FCM keeps for itself; a message using one is refused.
RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type"})
RESERVED_DATA_PREFIXES = ("google.", "gcm.")
PRIORITIES = {"high": ("HIGH", "10"), "normal": ("NORMAL", "5")}  # Android, APNs


def reserved_data_key(key: str) -> bool:
    """Whether FCM keeps ``key`` for itself (``from``, ``google.c.a.e``...)."""
    return key in RESERVED_DATA_KEYS or key.startswith(RESERVED_DATA_PREFIXES)


class TokenProvider(Protocol):
    """Gives a valid OAuth2 access token for FCM, refreshing it as needed."""

    def token(self) -> str: ...


class StaticTokenProvider:
    """Always the same token: for tests and short-lived tools."""

    def __init__(self, token: str):
        self._token = token

    def token(self) -> str:
        return self._token


class ServiceAccountTokenProvider:
    """Access tokens from a Google service-account key file, refreshed when expired.

    google-auth signs a JWT with the key and trades it at the file's ``token_uri`` for an
    access token, which it keeps until shortly before it expires. The lock lets the many
    activity threads share one token instead of each fetching its own.
    """

    def __init__(self, service_account_file: str | Path, *, scopes: Sequence[str] = (FCM_SCOPE,)):
        self._credentials = service_account.Credentials.from_service_account_file(
            str(service_account_file), scopes=list(scopes)
        )
        self._request = Request()
        self._lock = threading.Lock()

    def token(self) -> str:
        """A valid access token.

        Raises:
            PermanentSendError: The token endpoint refused the key (``provider_auth``).
            TransientSendError: It could not be reached, or asked us to try again.
        """
        with self._lock:
            if not self._credentials.valid:
                try:
                    self._credentials.refresh(self._request)
                except google_exceptions.RefreshError as exc:
                    if getattr(exc, "retryable", False):
                        raise TransientSendError("google token refresh failed") from None
                    raise PermanentSendError("provider_auth", "google token refused") from None
                except google_exceptions.TransportError:
                    raise TransientSendError("google token endpoint unreachable") from None
            return str(self._credentials.token)


class FcmPushChannel:
    """Sends push notifications to one device token per message.

    Args:
        project_id: The Firebase project the app belongs to.
        token_provider: Where OAuth2 access tokens come from
            (:class:`ServiceAccountTokenProvider` in production).
        base_url: The API host; FCM itself by default (tests use a local server).
        timeout: Seconds to wait for FCM's answer; a timeout is transient.

    A deep link travels in the data payload as ``data["link"]``, where the apps read it.
    """

    name = "fcm"

    def __init__(
        self,
        project_id: str,
        *,
        token_provider: TokenProvider,
        base_url: str = "https://fcm.googleapis.com",
        timeout: float = 10.0,
    ):
        self._url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self._tokens = token_provider
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def send(self, message: OutboundMessage) -> SendResult:
        """Send to the device token in ``message.to``.

        Raises:
            PermanentSendError: The token is dead (``unregistered_token``), the request was
                refused (``invalid_argument``, ``rejected``; a reserved data key is refused
                before sending) or our credentials were.
            TransientSendError: Quota exceeded (with ``Retry-After``), FCM failed, or the
                network did.
        """
        reserved = sorted(key for key in message.data if reserved_data_key(str(key)))
        if reserved:
            raise PermanentSendError("invalid_argument", f"reserved data keys: {reserved}")
        body = self.payload(message)
        headers = {"Authorization": f"Bearer {self._tokens.token()}"}
        try:
            response = self._http.post(self._url, json=body, headers=headers)
        except httpx.TransportError as exc:  # connect/read timeouts, refused, reset
            raise TransientSendError(f"fcm unreachable: {type(exc).__name__}") from None
        if response.is_success:
            name = _json(response).get("name")
            if not name:
                raise TransientSendError(f"fcm answered {response.status_code} without a name")
            return SendResult(provider=self.name, provider_message_id=str(name))
        raise fcm_error(
            response.status_code,
            _json(response),
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    @staticmethod
    def payload(message: OutboundMessage) -> dict[str, Any]:
        """The v1 request body.

        Data values must be strings: other values are sent as JSON (``true``, ``7``,
        ``{"a": 1}``), so the app can parse them back; None values are left out. A message
        with neither title nor body has no ``notification``. Priority, TTL and sound become
        the ``android`` and ``apns`` blocks.
        """
        body: dict[str, Any] = {"token": message.to}
        notification = {k: v for k, v in (("title", message.title), ("body", message.body)) if v}
        if notification:
            body["notification"] = notification
        data = {str(k): _data_value(v) for k, v in message.data.items() if v is not None}
        if data:
            body["data"] = data
        android, apns = _platform_options(message)
        if android:
            body["android"] = android
        if apns:
            body["apns"] = apns
        return {"message": body}


def _data_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    # str() would give Python's spelling ("True", "{'a': 1}"), which no app can parse.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _platform_options(message: OutboundMessage) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``android`` and ``apns`` blocks for the message's priority, TTL and sound."""
    if message.priority is not None and message.priority not in PRIORITIES:
        raise PermanentSendError("invalid_argument", f"unknown priority {message.priority!r}")
    if message.ttl_seconds is not None and message.ttl_seconds < 0:
        raise PermanentSendError("invalid_argument", "a negative time to live")
    android: dict[str, Any] = {}
    apns_headers: dict[str, str] = {}
    aps: dict[str, Any] = {}
    if message.priority is not None:
        android["priority"], apns_headers["apns-priority"] = PRIORITIES[message.priority]
    if message.ttl_seconds is not None:
        android["ttl"] = f"{message.ttl_seconds}s"
        # APNs wants an instant, not a duration. A transport deadline, not business time:
        # the wall clock is the right one. 0 tells APNs to try once and not store it.
        apns_headers["apns-expiration"] = (
            str(int(time.time()) + message.ttl_seconds) if message.ttl_seconds else "0"
        )
    if message.sound is not None:
        android["notification"] = {"sound": message.sound}
        aps["sound"] = message.sound
    apns: dict[str, Any] = {}
    if apns_headers:
        apns["headers"] = apns_headers
    if aps:
        apns["payload"] = {"aps": aps}
    return android, apns


def fcm_error(
    status: int, body: dict[str, Any], *, retry_after: float | None = None
) -> PermanentSendError | TransientSendError:
    """Classify an FCM error answer from its HTTP status and Google error body."""
    raw = body.get("error")
    error: dict[str, Any] = raw if isinstance(raw, dict) else {}
    google_status = str(error.get("status") or "")
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    codes = [str(d["errorCode"]) for d in details if d.get("errorCode")]
    fcm_code = codes[0] if codes else google_status
    described = f"fcm {status} {fcm_code}".rstrip()
    if error.get("message"):
        described = f"{described}: {scrub(str(error['message']))}"
    if fcm_code in ("UNREGISTERED", "SENDER_ID_MISMATCH") or (
        fcm_code == "INVALID_ARGUMENT" and "message.token" in _bad_fields(details)
    ):
        # Gone, another project's, or not a token at all: no retry will ever reach it.
        return PermanentSendError("unregistered_token", described)
    if status == 429 or fcm_code == "QUOTA_EXCEEDED":
        return TransientSendError(f"fcm quota ({described})", retry_after=retry_after)
    if status >= 500 or fcm_code in ("UNAVAILABLE", "INTERNAL"):
        return TransientSendError(f"fcm unavailable ({described})", retry_after=retry_after)
    if status in (401, 403):
        return PermanentSendError("provider_auth", described)
    if fcm_code == "INVALID_ARGUMENT" or status == 400:
        return PermanentSendError("invalid_argument", described)
    return PermanentSendError("rejected", described)


def _bad_fields(details: list[dict[str, Any]]) -> set[str]:
    """The fields a ``google.rpc.BadRequest`` detail names as wrong."""
    return {
        str(violation.get("field"))
        for detail in details
        if detail.get("@type") == BAD_REQUEST_TYPE
        for violation in detail.get("fieldViolations") or []
        if isinstance(violation, dict)
    }


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        parsed = response.json()
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
