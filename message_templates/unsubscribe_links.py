"""Signed, expiring unsubscribe links: what a message's footer and ``List-Unsubscribe``
header carry, and what the ``/u/{token}`` pages (``triggers/unsubscribe.py``) read.

The token names the user, channel, topic and message and when it expires, signed with
HMAC-SHA256 under ``unsubscribe_secret``: ``base64url(json payload) "." base64url(mac)``.
It carries ids only, never an address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from config import Settings
from kinds import is_kind

DEFAULT_VALIDITY = timedelta(days=60)
_VERSION = 1
# Keeps these MACs apart from anything else ever signed with the same secret.
_DOMAIN = b"lifecycle-unsubscribe."


class BadUnsubscribeToken(ValueError):
    """The token was not made by us (``invalid``) or is past its expiry (``expired``)."""

    def __init__(self, reason: str):
        super().__init__(f"unsubscribe token {reason}")
        self.reason = reason


@dataclass(frozen=True)
class UnsubscribeClaim:
    """What a valid token says: unsubscribe this user from this channel and topic."""

    user_id: str
    channel: str
    topic: str
    message_id: int | None
    expires_at: datetime


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UnsubscribeLinks:
    """Makes and reads unsubscribe links.

    Args:
        secret: The HMAC key (``settings.unsubscribe_secret``).
        prefix: What goes before the token: ``{public_base_url}/u``.
        validity: How long a link works after the send that made it.
    """

    def __init__(self, secret: str, *, prefix: str, validity: timedelta = DEFAULT_VALIDITY):
        if not secret:
            raise ValueError("an unsubscribe secret is needed to sign links")
        self._key = secret.encode()
        self._prefix = prefix.rstrip("/")
        self._validity = validity

    @classmethod
    def from_settings(cls, settings: Settings) -> UnsubscribeLinks:
        """Links under ``settings.public_base_url``, signed with its unsubscribe secret."""
        return cls(
            settings.unsubscribe_secret.get_secret_value(),
            prefix=f"{settings.public_base_url}/u",
            validity=settings.unsubscribe_link_validity,
        )

    def url(
        self,
        *,
        user_id: str,
        channel: str,
        topic: str,
        message_id: int | None,
        now: datetime,
    ) -> str:
        """The link for one message, valid from ``now`` (the send's time) for the validity."""
        token = self.token(
            user_id=user_id,
            channel=channel,
            topic=topic,
            message_id=message_id,
            expires_at=now + self._validity,
        )
        return f"{self._prefix}/{token}"

    def token(
        self,
        *,
        user_id: str,
        channel: str,
        topic: str,
        message_id: int | None,
        expires_at: datetime,
    ) -> str:
        """A signed token; ``expires_at`` is kept to the second."""
        payload = json.dumps(
            [_VERSION, user_id, channel, topic, message_id, int(expires_at.timestamp())],
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        body = _b64encode(payload)
        return f"{body}.{_b64encode(self._mac(body))}"

    def read(self, token: str, *, now: datetime) -> UnsubscribeClaim:
        """What ``token`` says, if we signed it and it has not expired.

        Raises:
            BadUnsubscribeToken: ``invalid`` (malformed or tampered) or ``expired``.
        """
        body, dot, mac = token.partition(".")
        if not dot or not body or not mac or len(token) > 2048 or not token.isascii():
            raise BadUnsubscribeToken("invalid")
        try:
            given = _b64decode(mac)
        except (binascii.Error, ValueError):
            raise BadUnsubscribeToken("invalid") from None
        if not hmac.compare_digest(given, self._mac(body)):
            raise BadUnsubscribeToken("invalid")
        try:
            version, user_id, channel, topic, message_id, expires = json.loads(_b64decode(body))
        except (binascii.Error, ValueError, TypeError):
            raise BadUnsubscribeToken("invalid") from None
        if (
            version != _VERSION
            or not isinstance(user_id, str)
            or not is_kind(channel)
            or not isinstance(topic, str)
            or not (message_id is None or isinstance(message_id, int))
            or not isinstance(expires, int)
        ):
            raise BadUnsubscribeToken("invalid")
        expires_at = datetime.fromtimestamp(expires, UTC)
        if expires_at <= now:
            raise BadUnsubscribeToken("expired")
        return UnsubscribeClaim(user_id, channel, topic, message_id, expires_at)

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._key, _DOMAIN + body.encode("ascii"), hashlib.sha256).digest()
