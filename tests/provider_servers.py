"""Local stand-ins for Twilio, SendGrid, FCM and Google's OAuth2 token endpoint.

Each is a threaded HTTP server on 127.0.0.1 that answers the way the provider's API
reference says (Twilio's ``api_v2010`` and SendGrid's ``tsg_mail_v3`` OpenAPI specs; FCM's
HTTP v1 reference), checks credentials the way the provider does, records every request it
receives, and can be told to answer the next requests with an error or to stall.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

JSON = "application/json"

# The credentials the servers in the fixtures accept: test values, nothing real.
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "twilio-test-token"  # noqa: S105 - a local test server's credential
MESSAGING_SERVICE_SID = "MG" + "fedcba9876543210" * 2
SENDGRID_KEY = "SG.test-key"
FCM_PROJECT = "shop-test"
FCM_ACCESS_TOKEN = "ya29.static-test-token"  # noqa: S105
SERVICE_ACCOUNT_EMAIL = "lifecycle@shop-test.iam.gserviceaccount.com"


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed: form fields (first values), JSON, or the raw bytes
    raw: bytes
    form: dict[str, list[str]] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)  # first values
    answered_at: datetime | None = None  # when a held request (``slow_next``) was let go


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Answer:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": JSON} | (headers or {}))


@dataclass
class Fault:
    """An error answer queued for upcoming requests."""

    status: int
    code: int | str | None
    message: str
    retry_after: str | None
    headers: dict[str, str]
    remaining: int


class ProviderServer:
    """The shared machinery: a server thread, the request log, queued faults and stalls."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._faults: deque[Fault] = deque()
        self._stalls: deque[float] = deque()
        self._delays: deque[float] = deque()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                answer = server._answer(self.command, self.path, self.headers, raw)
                if answer is None:  # stalled past the client's patience: say nothing
                    self.close_connection = True
                    return
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ProviderServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(
        self,
        status: int,
        *,
        code: int | str | None = None,
        message: str | None = None,
        retry_after: float | str | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` authenticated requests with this error.

        ``code`` is what the provider's error body names: Twilio's numeric error code,
        FCM's ``errorCode`` (``UNREGISTERED``...), SendGrid's ``field``. ``retry_after``
        becomes the ``Retry-After`` header.
        """
        with self._lock:
            self._faults.append(
                Fault(
                    status=status,
                    code=code,
                    message=message or "",
                    retry_after=None if retry_after is None else str(retry_after),
                    headers=headers or {},
                    remaining=times,
                )
            )

    def stall_next(self, seconds: float) -> None:
        """Hold the next request this long, then drop the connection without answering."""
        with self._lock:
            self._stalls.append(seconds)

    def slow_next(self, seconds: float) -> None:
        """Hold the next request this long, then answer it as usual."""
        with self._lock:
            self._delays.append(seconds)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.on_reset()
            self._faults.clear()
            self._stalls.clear()
            self._delays.clear()

    def _answer(self, method: str, target: str, headers: Any, raw: bytes) -> Answer | None:
        path, _, query = target.partition("?")
        lowered = {k.lower(): v for k, v in headers.items()}
        recorded = self._record(method, path, lowered, raw)
        recorded.query = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        with self._lock:
            self.requests.append(recorded)
            stall = self._stalls.popleft() if self._stalls else None
            delay = self._delays.popleft() if self._delays and stall is None else None
        if stall is not None:
            time.sleep(stall)
            return None
        if delay is not None:
            time.sleep(delay)
            recorded.answered_at = datetime.now(UTC)
        denied = self.authenticate(recorded)
        if denied is not None:
            return denied
        with self._lock:
            fault = self._faults[0] if self._faults else None
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.popleft()
        if fault is not None:
            extra = dict(fault.headers)
            if fault.retry_after is not None:
                extra["Retry-After"] = fault.retry_after
            answer = self.error(fault.status, fault.code, fault.message, recorded)
            answer.headers.update(extra)
            return answer
        return self.handle(recorded)

    @staticmethod
    def _record(method: str, path: str, headers: dict[str, str], raw: bytes) -> Recorded:
        content_type = headers.get("content-type", "").split(";")[0].strip()
        if content_type == "application/x-www-form-urlencoded":
            form = parse_qs(raw.decode(), keep_blank_values=True)
            body: Any = {k: v[0] for k, v in form.items()}
            return Recorded(method, path, headers, body, raw, form)
        if content_type == JSON:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            return Recorded(method, path, headers, body, raw)
        return Recorded(method, path, headers, raw, raw)

    # What each provider overrides.
    def on_reset(self) -> None:
        pass

    def authenticate(self, request: Recorded) -> Answer | None:
        return None

    def error(self, status: int, code: int | str | None, message: str, request: Recorded) -> Answer:
        raise NotImplementedError

    def handle(self, request: Recorded) -> Answer:
        raise NotImplementedError


# --- Twilio ---------------------------------------------------------------------------------

TWILIO_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")

# The message Twilio gives for the error codes tests use.
TWILIO_MESSAGES_BY_CODE = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21211: "Invalid 'To' Phone Number",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the "
    "'To' number",
    21602: "Message body is required.",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable using the 'From' phone number "
    "via SMS.",
}


class TwilioServer(ProviderServer):
    """``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, HTTP Basic sid:token."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sids: list[str] = []  # of the messages created, in order
        self.resources: list[dict[str, Any]] = []  # theirs, as the list shows them

    def on_reset(self) -> None:
        self.sids.clear()
        self.resources.clear()

    @property
    def lists(self) -> list[Recorded]:
        """The requests that listed messages."""
        return [r for r in self.requests if TWILIO_MESSAGES.match(r.path) and r.method == "GET"]

    @property
    def messages(self) -> list[Recorded]:
        """The requests that created a message."""
        return [r for r in self.requests if TWILIO_MESSAGES.match(r.path) and r.method == "POST"]

    def authenticate(self, request: Recorded) -> Answer | None:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return self.error(401, 20003, "", request)
        return None

    def error(self, status: int, code: int | str | None, message: str, request: Recorded) -> Answer:
        code = code if code is not None else status
        return Answer.json(
            status,
            {
                "code": code,
                "message": message or TWILIO_MESSAGES_BY_CODE.get(int(code), "Error"),
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    def handle(self, request: Recorded) -> Answer:
        match = TWILIO_MESSAGES.match(request.path)
        if match is None or request.method not in ("GET", "POST"):
            return self.error(404, 20404, "", request)
        if match["sid"] != self.account_sid:
            return self.error(401, 20003, "", request)
        if request.method == "GET":
            return self.list_messages(request)
        fields = request.body if isinstance(request.body, dict) else {}
        if not fields.get("To"):
            return self.error(400, 21604, "", request)
        if not fields.get("From") and not fields.get("MessagingServiceSid"):
            return self.error(400, 21603, "", request)
        if not fields.get("Body"):
            return self.error(400, 21602, "", request)
        sid = "SM" + uuid.uuid4().hex
        now = formatdate(usegmt=False).replace("-0000", "+0000")
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"
        resource = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": fields["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": fields.get("From"),
            "messaging_service_sid": fields.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            # A Messaging Service picks the sender later: such messages start "accepted".
            "status": "queued" if fields.get("From") else "accepted",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": fields["To"],
            "uri": uri,
        }
        with self._lock:
            self.sids.append(sid)
            # Listed later as Twilio shows it a moment on: sent, with its date_sent.
            self.resources.append(resource | {"status": "sent", "date_sent": now})
        return Answer.json(201, resource)

    def list_messages(self, request: Recorded) -> Answer:
        """``GET .../Messages.json``: newest first, filtered by ``To``, ``From`` and
        ``DateSent`` / ``DateSent<`` / ``DateSent>`` (messages not sent yet have no date_sent
        and match no date filter), one page of ``PageSize`` (default 50, at most 1000)."""
        query = request.query
        try:
            page_size = min(int(query.get("PageSize", "50")), 1000)
            page = int(query.get("Page", "0"))
            bounds = {
                name: _twilio_instant(query[name])
                for name in ("DateSent", "DateSent<", "DateSent>")
                if name in query
            }
        except ValueError:
            return self.error(400, 20001, "Invalid query parameter", request)
        with self._lock:
            found = list(reversed(self.resources))
        for name, field_name in (("To", "to"), ("From", "from")):
            if name in query:
                found = [m for m in found if m[field_name] == query[name]]
        for name, bound in bounds.items():
            kept = []
            for resource in found:
                if resource["date_sent"] is None:
                    continue
                sent = parsedate_to_datetime(resource["date_sent"])
                if (
                    (name == "DateSent" and sent.date() == bound.date())
                    or (name == "DateSent<" and sent <= bound)
                    or (name == "DateSent>" and sent >= bound)
                ):
                    kept.append(resource)
            found = kept
        start = page * page_size
        uri = request.path + "?" + urlencode(query)
        return Answer.json(
            200,
            {
                "messages": found[start : start + page_size],
                "start": start,
                "end": max(start, min(start + page_size, len(found)) - 1),
                "page": page,
                "page_size": page_size,
                "uri": uri,
                "first_page_uri": uri,
                "next_page_uri": (
                    request.path + "?" + urlencode(query | {"Page": str(page + 1)})
                    if start + page_size < len(found)
                    else None
                ),
                "previous_page_uri": None,
            },
        )


def _twilio_instant(text: str) -> datetime:
    """A ``DateSent`` filter value: ISO 8601, a date alone meaning its midnight UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- SendGrid -------------------------------------------------------------------------------

# SendGrid's official OpenAPI description of Mail Send v3 (OpenAPI 3.1, so its schemas are
# JSON Schema 2020-12), kept beside the channel tests so they need nothing from outside.
SENDGRID_SPEC = Path(__file__).parent / "channels" / "specs" / "tsg_mail_v3.json"
SENDGRID_SPEC_URI = "urn:sendgrid:tsg_mail_v3"
SENDGRID_MAIL_SEND_SCHEMA = (
    "#/components/requestBodies/PostMailSend/content/application~1json/schema"
)


@cache
def sendgrid_mail_send_validator() -> Draft202012Validator:
    """The request-body schema of ``POST /v3/mail/send``, its ``$ref``s read from the spec."""
    spec = json.loads(SENDGRID_SPEC.read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry().with_resource(
        SENDGRID_SPEC_URI, DRAFT202012.create_resource(spec)
    )
    return Draft202012Validator(
        {"$ref": SENDGRID_SPEC_URI + SENDGRID_MAIL_SEND_SCHEMA}, registry=registry
    )


def _schema_error(validator: Draft202012Validator, body: Any) -> ValidationError | None:
    return best_match(validator.iter_errors(body))


def _dotted(error: ValidationError) -> str | None:
    """The failing field as SendGrid names it: ``personalizations.0.to``."""
    return ".".join(str(part) for part in error.absolute_path) or None


# Headers the Mail Send reference says a request may not set.
SENDGRID_RESERVED_HEADERS = {
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
}


class SendGridServer(ProviderServer):
    """``POST /v3/mail/send``, ``Authorization: Bearer <api key>``; 202 + ``X-Message-Id``."""

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.message_ids: list[str] = []
        self._without_id = 0

    def on_reset(self) -> None:
        self.message_ids.clear()
        self._without_id = 0

    def omit_message_id_next(self, times: int = 1) -> None:
        """Accept the next ``times`` mails with a 202 that has no ``X-Message-Id``."""
        with self._lock:
            self._without_id += times

    @property
    def mails(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v3/mail/send" and r.method == "POST"]

    def authenticate(self, request: Recorded) -> Answer | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self.error(
                401,
                None,
                "The provided authorization grant is invalid, expired, or revoked",
                request,
            )
        return None

    def error(self, status: int, code: int | str | None, message: str, request: Recorded) -> Answer:
        field_name = code if isinstance(code, str) else None
        return Answer.json(
            status,
            {"errors": [{"message": message or "error", "field": field_name, "help": None}]},
        )

    def _bad(self, message: str, field_name: str | None) -> Answer:
        return Answer.json(
            400, {"errors": [{"message": message, "field": field_name, "help": None}]}
        )

    def handle(self, request: Recorded) -> Answer:
        if request.path != "/v3/mail/send" or request.method != "POST":
            return self.error(404, None, "not found", request)
        mail = request.body
        if not isinstance(mail, dict):
            return self._bad("Bad Request", None)
        # Every request must be what the official spec allows: drift fails the tests here.
        invalid = _schema_error(sendgrid_mail_send_validator(), mail)
        if invalid is not None:
            return self._bad(invalid.message, _dotted(invalid))
        personalizations = mail.get("personalizations")
        if not personalizations or not all(p.get("to") for p in personalizations):
            return self._bad(
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
            )
        if not (mail.get("from") or {}).get("email"):
            return self._bad("The from object must be provided for every email send.", "from")
        if not mail.get("template_id") and not mail.get("subject"):
            if not all(p.get("subject") for p in personalizations):
                return self._bad(
                    "The subject is required. You can get around this requirement if you use "
                    "a template with a subject defined or if every personalization has a "
                    "subject defined.",
                    "subject",
                )
        content = mail.get("content") or []
        if not content and not mail.get("template_id"):
            return self._bad(
                "Unless a valid template_id is provided, the content parameter is required.",
                "content",
            )
        types = [c.get("type") for c in content]
        if any(not c.get("value") for c in content):
            return self._bad(
                "The content value must be a string at least one character in length.",
                "content.0.value",
            )
        expected_order = [t for t in ("text/plain", "text/html") if t in types]
        if types[: len(expected_order)] != expected_order:
            return self._bad(
                "If present, text/plain must be first, followed by text/html, followed by any "
                "other content.",
                "content",
            )
        categories = mail.get("categories") or []
        if len(categories) > 10 or len(set(categories)) != len(categories):
            return self._bad("Too many categories, or duplicates.", "categories")
        for name in mail.get("headers") or {}:
            if name.lower() in SENDGRID_RESERVED_HEADERS:
                return self._bad(f"The header {name} is reserved.", "headers")
        with self._lock:
            if self._without_id:
                self._without_id -= 1
                return Answer(202, b"")
        message_id = secrets.token_urlsafe(16)[:22]
        self.message_ids.append(message_id)
        return Answer(202, b"", {"X-Message-Id": message_id})


# --- FCM ------------------------------------------------------------------------------------

FCM_SEND = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

_STRING = {"type": "string"}
_STRING_MAP = {"type": "object", "additionalProperties": _STRING}


def _closed(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An object with exactly these fields: FCM refuses unknown names."""
    return {"type": "object", "properties": properties, "additionalProperties": False} | extra


_LABEL = _closed({"analytics_label": _STRING})


# FCM HTTP v1's ``Message`` (REST reference, projects.messages), in its snake_case JSON
# spelling, as far as our sends go; webpush is kept open. Stricter than FCM in one place: a
# ``notification`` with nothing in it is refused, since it can only be a mistake.
FCM_SEND_SCHEMA: dict[str, Any] = _closed(
    {
        "validate_only": {"type": "boolean"},
        "message": _closed(
            {
                "name": _STRING,
                "token": {"type": "string", "minLength": 1},
                "topic": _STRING,
                "condition": _STRING,
                "data": _STRING_MAP,
                "notification": _closed(
                    {"title": _STRING, "body": _STRING, "image": _STRING}, minProperties=1
                ),
                "android": _closed(
                    {
                        "collapse_key": _STRING,
                        "priority": {"enum": ["NORMAL", "HIGH"]},
                        "ttl": {"type": "string", "pattern": r"^\d+(\.\d{1,9})?s$"},
                        "restricted_package_name": _STRING,
                        "data": _STRING_MAP,
                        "notification": _closed(
                            {
                                name: _STRING
                                for name in (
                                    "title",
                                    "body",
                                    "icon",
                                    "color",
                                    "sound",
                                    "tag",
                                    "click_action",
                                    "body_loc_key",
                                    "title_loc_key",
                                    "channel_id",
                                    "ticker",
                                    "image",
                                )
                            }
                        ),
                        "fcm_options": _LABEL,
                        "direct_boot_ok": {"type": "boolean"},
                    }
                ),
                "apns": _closed(
                    {
                        "headers": _STRING_MAP,
                        "payload": {"type": "object"},
                        "fcm_options": _closed({"analytics_label": _STRING, "image": _STRING}),
                        "live_activity_token": _STRING,
                    }
                ),
                "webpush": {"type": "object"},
                "fcm_options": _LABEL,
            }
        ),
    },
    required=["message"],
)
_FCM_VALIDATOR = Draft202012Validator(FCM_SEND_SCHEMA)
FCM_RESERVED_DATA_KEYS = {"from", "notification", "message_type"}
FCM_RESERVED_DATA_PREFIXES = ("google.", "gcm.")


class FcmServer(ProviderServer):
    """FCM HTTP v1 ``messages:send`` with ``Authorization: Bearer <access token>``.

    ``access_tokens`` are the tokens it accepts (a :class:`GoogleTokenServer` adds those it
    issues); ``unregistered`` are device tokens it answers ``UNREGISTERED`` for,
    ``foreign`` those of another project (``SENDER_ID_MISMATCH``) and ``malformed`` those
    that are no registration token (``INVALID_ARGUMENT`` on ``message.token``). Every body
    is checked against :data:`FCM_SEND_SCHEMA` and FCM's reserved data keys first.
    """

    def __init__(self, project_id: str, access_tokens: set[str] | None = None) -> None:
        super().__init__()
        self.project_id = project_id
        self.access_tokens: set[str] = set(access_tokens or ())
        self.unregistered: set[str] = set()
        self.foreign: set[str] = set()
        self.malformed: set[str] = set()

    def on_reset(self) -> None:
        self.unregistered.clear()
        self.foreign.clear()
        self.malformed.clear()

    @property
    def sends(self) -> list[Recorded]:
        return [r for r in self.requests if FCM_SEND.match(r.path)]

    def authenticate(self, request: Recorded) -> Answer | None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        if token is None or token not in self.access_tokens:
            return Answer.json(
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "Request had invalid authentication credentials. Expected "
                        "OAuth 2 access token, login cookie or other valid authentication "
                        "credential.",
                        "status": "UNAUTHENTICATED",
                    }
                },
            )
        return None

    def error(self, status: int, code: int | str | None, message: str, request: Recorded) -> Answer:
        """``code`` is the FCM errorCode (``UNREGISTERED``, ``QUOTA_EXCEEDED``...)."""
        error: dict[str, Any] = {
            "code": status,
            "message": message or GOOGLE_STATUS.get(status, "error").replace("_", " ").lower(),
            "status": GOOGLE_STATUS.get(status, "UNKNOWN"),
        }
        if code is not None:
            error["details"] = [{"@type": FCM_ERROR_TYPE, "errorCode": code}]
        return Answer.json(status, {"error": error})

    def bad_request(self, field_name: str | None, description: str) -> Answer:
        """FCM's 400 for a malformed request: the field at fault in a BadRequest detail."""
        details: list[dict[str, Any]] = [{"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"}]
        if field_name:
            details.append(
                {
                    "@type": BAD_REQUEST_TYPE,
                    "fieldViolations": [{"field": field_name, "description": description}],
                }
            )
        return Answer.json(
            400,
            {
                "error": {
                    "code": 400,
                    "message": description,
                    "status": "INVALID_ARGUMENT",
                    "details": details,
                }
            },
        )

    def handle(self, request: Recorded) -> Answer:
        match = FCM_SEND.match(request.path)
        if match is None or request.method != "POST":
            return self.error(404, None, "Not Found", request)
        if match["project"] != self.project_id:
            return self.error(
                403,
                None,
                f"Permission 'cloudmessaging.messages.create' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/{match['project']}' "
                "(or it may not exist).",
                request,
            )
        if not isinstance(request.body, dict):
            return self.bad_request(None, "Invalid JSON payload received.")
        invalid = best_match(_FCM_VALIDATOR.iter_errors(request.body))
        if invalid is not None:
            field_name = ".".join(str(part) for part in invalid.absolute_path)
            return self.bad_request(field_name or None, invalid.message)
        message = request.body["message"]
        targets = [k for k in ("token", "topic", "condition") if message.get(k)]
        if len(targets) != 1:
            return self.bad_request("message", "Exactly one of token, topic or condition.")
        for key in message.get("data") or {}:
            if key in FCM_RESERVED_DATA_KEYS or key.startswith(FCM_RESERVED_DATA_PREFIXES):
                return self.bad_request("message.data", f"Invalid data payload key: {key}")
        token = message.get("token")
        if token in self.malformed:
            return self.bad_request(
                "message.token", "The registration token is not a valid FCM registration token"
            )
        if token in self.foreign:
            return self.error(403, "SENDER_ID_MISMATCH", "SenderId mismatch", request)
        if token in self.unregistered:
            return self.error(404, "UNREGISTERED", "Requested entity was not found.", request)
        message_id = f"0:{int(time.time() * 1000)}%{secrets.token_hex(8)}"
        return Answer.json(200, {"name": f"projects/{self.project_id}/messages/{message_id}"})


# --- Google OAuth2 token endpoint -----------------------------------------------------------

GOOGLE_FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


class GoogleTokenServer(ProviderServer):
    """The ``token_uri`` of a service-account key: trades a signed JWT for an access token.

    It checks the JWT's signature against ``public_key`` (a ``cryptography`` RSA public key)
    and its claims, and adds each token it issues to ``fcm.access_tokens``.
    """

    def __init__(self, *, client_email: str, public_key: Any, fcm: FcmServer | None = None):
        super().__init__()
        self.client_email = client_email
        self.public_key = public_key
        self.fcm = fcm
        self.expires_in = 3600
        self.issued: list[str] = []

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def error(self, status: int, code: int | str | None, message: str, request: Recorded) -> Answer:
        return Answer.json(
            status, {"error": code or "invalid_grant", "error_description": message or "refused"}
        )

    def handle(self, request: Recorded) -> Answer:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        fields = request.body if isinstance(request.body, dict) else {}
        if fields.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self.error(400, "unsupported_grant_type", "", request)
        try:
            header_b64, claims_b64, signature_b64 = fields["assertion"].split(".")
            self.public_key.verify(
                _unb64(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            claims = json.loads(_unb64(claims_b64))
        except Exception:  # any malformed or forged assertion
            return self.error(400, "invalid_grant", "Invalid JWT Signature.", request)
        # google-auth addresses its JWT to Google's token URL whatever the key's token_uri.
        audiences = (GOOGLE_TOKEN_AUDIENCE, self.token_uri)
        if claims.get("iss") != self.client_email or claims.get("aud") not in audiences:
            return self.error(
                400, "invalid_grant", "Invalid JWT: wrong issuer or audience", request
            )
        if GOOGLE_FCM_SCOPE not in str(claims.get("scope", "")).split():
            return self.error(400, "invalid_scope", "", request)
        if claims.get("exp", 0) < time.time():
            return self.error(400, "invalid_grant", "Invalid JWT: expired", request)
        token = f"ya29.{secrets.token_urlsafe(24)}"
        self.issued.append(token)
        if self.fcm is not None:
            self.fcm.access_tokens.add(token)
        return Answer.json(
            200, {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
