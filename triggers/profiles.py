"""Profiles from calls: the ``users`` row, push tokens and consent, upserted from traits.

Identify traits map onto columns where they are well formed (``email``, ``phone`` as E.164,
``locale``, ``timezone`` as an IANA name, ``member_tier``, ``tags``); every trait is also kept
in ``users.traits``. A malformed value never fails the call: it stays in ``traits`` only and the
column keeps what it had. Functions here take a session and never commit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.models import Consent, PushToken, User
from store.upsert import insert_ignore
from triggers.segment import Message

_E164 = re.compile(r"\+[0-9]{7,15}")
_PHONE_PUNCTUATION = str.maketrans("", "", " -()\t")
_CONSENT_TRAITS = {
    "unsubscribed_sms": "sms",
    "unsubscribed_email": "email",
    "unsubscribed_push": "push",
}


def normalize_phone(raw: Any) -> str | None:
    """``raw`` as E.164 (``+`` and 7–15 digits) once spaces, dashes and parentheses go."""
    if not isinstance(raw, str):
        return None
    phone = raw.translate(_PHONE_PUNCTUATION)
    return phone if _E164.fullmatch(phone) else None


def valid_timezone(raw: Any) -> str | None:
    """``raw`` if it names an IANA time zone zoneinfo knows, else None."""
    if not isinstance(raw, str) or not raw or len(raw) > 64:
        return None
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return raw


def _short_str(raw: Any, limit: int) -> str | None:
    if isinstance(raw, str) and 0 < len(raw.strip()) <= limit:
        return raw.strip()
    return None


def _tags(raw: Any) -> list[str] | None:
    if isinstance(raw, list) and all(isinstance(t, str) for t in raw):
        return list(raw)
    return None


def apply_traits(user: User, traits: dict[str, Any]) -> None:
    """Merge identify ``traits`` into ``user``: well-formed values fill their columns."""
    if not traits:
        return
    user.traits = {**(user.traits or {}), **traits}
    if "email" in traits and (email := _short_str(traits["email"], 320)):
        user.email = email
    if "phone" in traits and (phone := normalize_phone(traits["phone"])):
        user.phone = phone
    if "locale" in traits and (locale := _short_str(traits["locale"], 35)):
        user.locale = locale
    if "timezone" in traits and (tz := valid_timezone(traits["timezone"])):
        user.timezone = tz
    if "member_tier" in traits and (tier := _short_str(traits["member_tier"], 32)):
        user.member_tier = tier
    if "tags" in traits and (tags := _tags(traits["tags"])) is not None:
        user.tags = tags


def apply_context(user: User, message: Message) -> None:
    """``context.locale`` / ``context.timezone`` fill the profile where traits did not.

    An identify call without the trait takes the device's value; any other call only fills a
    column that is still empty, so an explicit trait is not overwritten by every track call.
    """
    is_identify = message.type == "identify"
    if "locale" not in message.traits and (is_identify or not user.locale):
        locale = _short_str(message.context.get("locale"), 35)
        if locale:
            user.locale = locale
    if "timezone" not in message.traits and (is_identify or not user.timezone):
        tz = valid_timezone(message.context.get("timezone"))
        if tz:
            user.timezone = tz


def _upsert(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def upsert_push_token(
    session: Session, *, user_id: str, token: str, platform: str | None, now: datetime
) -> None:
    """Attach ``token`` to ``user_id`` (a device that changed hands moves to its new user)."""
    table: Table = PushToken.__table__  # type: ignore[assignment]
    stmt = _upsert(session, table).values(
        user_id=user_id, token=token, platform=platform, created_at=now
    )
    update: dict[str, Any] = {"user_id": stmt.excluded.user_id}
    if platform:
        update["platform"] = stmt.excluded.platform
    session.execute(stmt.on_conflict_do_update(index_elements=["token"], set_=update))


def upsert_consent(
    session: Session, *, user_id: str, channel: str, unsubscribed: bool, now: datetime
) -> None:
    """Record marketing consent for one channel as the platform reported it."""
    table: Table = Consent.__table__  # type: ignore[assignment]
    status = "unsubscribed" if unsubscribed else "subscribed"
    stmt = _upsert(session, table).values(
        user_id=user_id,
        channel=channel,
        topic="marketing",
        status=status,
        source="identify",
        updated_at=now,
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["user_id", "channel", "topic"],
            set_={"status": status, "source": "identify", "updated_at": now},
        )
    )


def _apply_devices_and_consent(
    session: Session, *, user_id: str, traits: dict[str, Any], now: datetime
) -> None:
    token = traits.get("push_token")
    if isinstance(token, str) and 0 < len(token) <= 512:
        platform = _short_str(traits.get("push_platform"), 16)
        upsert_push_token(
            session,
            user_id=user_id,
            token=token,
            platform=platform.lower() if platform else None,
            now=now,
        )
    for trait, channel in _CONSENT_TRAITS.items():
        value = traits.get(trait)
        if isinstance(value, bool):
            upsert_consent(session, user_id=user_id, channel=channel, unsubscribed=value, now=now)


def upsert_profile(session: Session, *, user_id: str, messages: Sequence[Message]) -> User:
    """Create or update one user's profile from the calls that named them.

    The row is created if absent (``created_at`` = the first call's timestamp), locked for the
    rest of the transaction, and updated in event-time order; ``last_seen_at`` only moves
    forward. Callers pass each user once per transaction, in a stable order (sorted ids), so
    two concurrent requests cannot deadlock on each other's rows.
    """
    ordered = sorted(messages, key=lambda m: m.timestamp)
    first = ordered[0]
    insert_ignore(
        session,
        User,
        values={
            "id": user_id,
            "anonymous_id": first.anonymous_id,
            "traits": {},
            "tags": [],
            "created_at": first.timestamp,
            "last_seen_at": first.timestamp,
            "updated_at": first.received_at,
        },
    )
    user = session.scalars(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    for message in ordered:
        if message.type == "identify":
            apply_traits(user, message.traits)
            _apply_devices_and_consent(
                session, user_id=user_id, traits=message.traits, now=message.received_at
            )
        apply_context(user, message)
        if user.anonymous_id is None and message.anonymous_id:
            user.anonymous_id = message.anonymous_id
        if user.last_seen_at is None or message.timestamp > user.last_seen_at:
            user.last_seen_at = message.timestamp
        user.updated_at = message.received_at
    return user
