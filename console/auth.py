"""Console sessions: a signed cookie holding a per-session CSRF token and an expiry.

Logging in with the admin token sets the cookie (HttpOnly, SameSite=Strict). The signing key
is derived from the admin token, so changing the token ends every session. Forms that change
state carry the session's CSRF token, which must match the one in the cookie.

Wrong tokens are throttled per client address (:class:`LoginThrottle`): a few are free, then
each attempt waits longer, up to a few minutes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
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


@dataclass
class _Failures:
    count: int
    last: float  # monotonic seconds of the latest wrong token
    until: float  # no attempt is checked before this


class LoginThrottle:
    """Slows down guessing the admin token, one client address at a time.

    The first ``FREE_FAILURES`` wrong tokens cost nothing; each one after that makes the
    address wait before its next attempt, twice as long as the last wait, up to
    ``MAX_WAIT_SECONDS``. While an address waits, its attempts are answered without checking
    the token (even the right one), so waiting cannot be skipped by guessing faster.

    Why per address and capped: a lock on the login itself would let anyone keep the admin
    out by failing on purpose. Per address, a guesser only slows itself down; an admin on
    another address, or already logged in (the session cookie), is not affected. Behind a
    proxy every client shares the proxy's address unless the server is told to trust its
    ``X-Forwarded-For`` (uvicorn ``--forwarded-allow-ips``), and then the cap bounds the
    worst case to a few minutes' wait. An address quiet for ``FORGET_AFTER_SECONDS`` starts
    afresh, and the table keeps at most ``max_clients`` addresses (oldest dropped), so a
    flood of addresses cannot exhaust memory.
    """

    FREE_FAILURES = 5
    FIRST_WAIT_SECONDS = 1.0
    MAX_WAIT_SECONDS = 300.0
    FORGET_AFTER_SECONDS = 3600.0

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000
    ) -> None:
        self._clock = clock
        self._max_clients = max_clients
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, client: str) -> int:
        """Whole seconds ``client`` must wait before its next attempt is checked (0: now)."""
        now = self._clock()
        self._forget_quiet(now)
        entry = self._failures.get(client)
        return 0 if entry is None else max(0, math.ceil(entry.until - now))

    def failed(self, client: str) -> int:
        """Count a wrong token from ``client``; the whole seconds it must now wait."""
        now = self._clock()
        self._forget_quiet(now)
        entry = self._failures.pop(client, None) or _Failures(count=0, last=now, until=now)
        entry.count += 1
        entry.last = now
        extra = entry.count - self.FREE_FAILURES
        wait = 0.0
        if extra > 0:
            wait = min(self.FIRST_WAIT_SECONDS * 2 ** min(extra - 1, 32), self.MAX_WAIT_SECONDS)
        entry.until = now + wait
        self._failures[client] = entry  # most recent last
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)
        return math.ceil(wait)

    def succeeded(self, client: str) -> None:
        """The right token from ``client``: its count starts again."""
        self._failures.pop(client, None)

    def _forget_quiet(self, now: float) -> None:
        # Entries are in order of their latest failure: the quiet ones are at the front.
        while self._failures:
            oldest = next(iter(self._failures.values()))
            if now - oldest.last <= self.FORGET_AFTER_SECONDS or oldest.until > now:
                break
            self._failures.popitem(last=False)
