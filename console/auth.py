"""Console sessions: a signed cookie holding a per-session CSRF token and an expiry.

Logging in with the admin token sets the cookie (HttpOnly, SameSite=Strict). The signing key
is derived from the admin token, so changing the token ends every session. Forms that change
state carry the session's CSRF token, which must match the one in the cookie.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

COOKIE = "lifecycle_console"
SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class ConsoleSession:
    csrf: str
    expires_at: int  # Unix seconds


class SessionSigner:
    """Makes and reads console session cookies signed with a key derived from the token."""

    def __init__(self, admin_token: str):
        self._admin_token = admin_token.encode()
        self._key = hmac.new(self._admin_token, b"lifecycle console session", "sha256").digest()

    def token_ok(self, given: str) -> bool:
        """Whether ``given`` is the admin token (constant-time comparison)."""
        return hmac.compare_digest(given.strip().encode(), self._admin_token)

    def new_cookie(self, *, now: datetime) -> tuple[str, ConsoleSession]:
        """A fresh session (new CSRF token) and its signed cookie value."""
        session = ConsoleSession(
            csrf=secrets.token_urlsafe(24),
            expires_at=int((now + SESSION_LIFETIME).timestamp()),
        )
        payload = json.dumps({"csrf": session.csrf, "exp": session.expires_at}).encode()
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{self._sign(body)}", session

    def read(self, cookie: str | None, *, now: datetime) -> ConsoleSession | None:
        """The session in ``cookie``, or None when it is missing, forged or expired."""
        if not cookie or "." not in cookie:
            return None
        body, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = ConsoleSession(csrf=str(data["csrf"]), expires_at=int(data["exp"]))
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None
        return session if session.expires_at > now.timestamp() else None

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_ok(session: ConsoleSession, given: str | None) -> bool:
    """Whether a form's CSRF token is this session's."""
    return bool(given) and hmac.compare_digest(str(given).encode(), session.csrf.encode())
