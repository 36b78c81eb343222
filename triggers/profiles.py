"""Profiles from calls: the ``users`` row, push tokens and consent, upserted from traits.

Identify traits map onto columns where they are well formed (``email``, ``phone`` as E.164,
``locale``, ``timezone`` as an IANA name, ``member_tier``, ``tags``); every trait is also kept
in ``users.traits``. A malformed value never fails the call: it stays in ``traits`` only and the
column keeps what it had. Functions here take a session and never commit.

Calls arrive out of order (a phone queues them offline, a batch is retried), so every fact is
dated by the call's ``timestamp`` and an older one never overwrites a newer one: each profile
field keeps the time it was set (``users.trait_times``), a push token the time it was
registered, consent the time it changed (where, at the same instant, an opt-out wins). A field
the newer call did not mention is still set by the older one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Table, bindparam, func, literal_column, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kinds import names
from store.models import PushToken, User
from store.types import UTCDateTime
from store.upsert import insert_ignore_many
from store.webhooks import record_consent
from triggers.segment import Message

_E164 = re.compile(r"\+[0-9]{7,15}")
_PHONE_PUNCTUATION = str.maketrans("", "", " -()\t")


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


# Traits that also fill a column of the same name, with the parser that says "well formed".
_COLUMNS: dict[str, Callable[[Any], Any]] = {
    "email": lambda raw: _short_str(raw, 320),
    "phone": normalize_phone,
    "locale": lambda raw: _short_str(raw, 35),
    "timezone": valid_timezone,
    "member_tier": lambda raw: _short_str(raw, 32),
    "tags": _tags,
}


def _happened_at(message: Message) -> datetime:
    """When the call's facts happened: its timestamp, never later than it reached us.

    A device clock running fast must not date a fact into the future, where no later call
    could ever override it.
    """
    return min(message.timestamp, message.received_at)


def _set_at(times: dict[str, str], field: str) -> datetime | None:
    raw = times.get(field)
    if not isinstance(raw, str):
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _newer(times: dict[str, str], field: str, at: datetime) -> bool:
    """Whether a fact about ``field`` dated ``at`` may replace the stored one (a tie goes to
    the call that arrived last, as it always did)."""
    stored = _set_at(times, field)
    return stored is None or at >= stored


def apply_traits(user: User, traits: dict[str, Any], *, at: datetime) -> None:
    """Merge identify ``traits`` dated ``at`` into ``user``: a trait set by a later call keeps
    its value; the others are set, and well-formed values fill their columns."""
    if not traits:
        return
    times = dict(user.trait_times or {})
    merged = dict(user.traits or {})
    for name, value in traits.items():
        if not _newer(times, name, at):
            continue
        merged[name] = value
        times[name] = at.isoformat()
        parse = _COLUMNS.get(name)
        if parse is not None and (parsed := parse(value)) is not None:
            setattr(user, name, parsed)
    user.traits, user.trait_times = merged, times


def apply_context(user: User, message: Message, *, at: datetime) -> None:
    """``context.locale`` / ``context.timezone`` fill the profile where traits did not.

    An identify call without the trait takes the device's value, unless a later call set the
    field; any other call only fills a column that is still empty, so an explicit trait is not
    overwritten by every track call.
    """
    is_identify = message.type == "identify"
    times = user.trait_times or {}
    for name in ("locale", "timezone"):
        if name in message.traits:
            continue
        value = _COLUMNS[name](message.context.get(name))
        if value is None:
            continue
        if is_identify and _newer(times, name, at):
            setattr(user, name, value)
            times = {**times, name: at.isoformat()}
            user.trait_times = times
        elif getattr(user, name) is None:
            # A weak fill, not dated: an explicit trait from any call may still replace it.
            setattr(user, name, value)


def _upsert(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def upsert_push_token(
    session: Session,
    *,
    user_id: str,
    token: str,
    platform: str | None,
    at: datetime,
    now: datetime,
) -> bool:
    """Attach ``token`` to ``user_id`` as registered at ``at`` (a device that changed hands
    moves to its new user), unless the token holds a registration newer than ``at``.

    Args:
        session: the caller's transaction.
        user_id: the token's user from now on.
        token: the device's push token.
        platform: ``ios``, ``android``, ``web``; None keeps what was stored.
        at: when the registration happened (the call's timestamp).
        now: when it reached us (``created_at`` of a new row).

    Returns:
        True if the row was written, False if a newer registration stands.
    """
    table: Table = PushToken.__table__  # type: ignore[assignment]
    stmt = _upsert(session, table).values(
        user_id=user_id, token=token, platform=platform, created_at=now, registered_at=at
    )
    update: dict[str, Any] = {
        "user_id": stmt.excluded.user_id,
        "registered_at": stmt.excluded.registered_at,
    }
    if platform:
        update["platform"] = stmt.excluded.platform
    # Rows stored without a registration time count as of when they were stored.
    stored_at = func.coalesce(table.c.registered_at, table.c.created_at)
    upsert = stmt.on_conflict_do_update(
        index_elements=["token"], set_=update, where=stored_at <= stmt.excluded.registered_at
    )
    # RETURNING, not rowcount (-1 on PostgreSQL for an INSERT): a refused update returns no row.
    return session.execute(upsert.returning(literal_column("1"))).first() is not None


def upsert_consent(
    session: Session, *, user_id: str, channel: str, unsubscribed: bool, at: datetime
) -> bool:
    """Record marketing consent for one channel as the platform reported it at ``at``;
    False if a newer consent change stands."""
    return record_consent(
        session,
        user_id=user_id,
        channel=channel,
        topic="marketing",
        status="unsubscribed" if unsubscribed else "subscribed",
        source="identify",
        at=at,
    )


def _apply_devices_and_consent(
    session: Session, *, user_id: str, traits: dict[str, Any], at: datetime, now: datetime
) -> None:
    token = traits.get("push_token")
    if isinstance(token, str) and 0 < len(token) <= 512:
        platform = _short_str(traits.get("push_platform"), 16)
        upsert_push_token(
            session,
            user_id=user_id,
            token=token,
            platform=platform.lower() if platform else None,
            at=at,
            now=now,
        )
    for channel in names():  # ``unsubscribed_sms: true`` unsubscribes from SMS, and so on
        value = traits.get(f"unsubscribed_{channel}")
        if isinstance(value, bool):
            upsert_consent(session, user_id=user_id, channel=channel, unsubscribed=value, at=at)


def upsert_profiles(session: Session, *, messages_by_user: Mapping[str, Sequence[Message]]) -> None:
    """Create or update the profiles of many users from the calls that named them.

    A handful of statements whatever the number of users. Each user's calls apply in
    event-time order; a field, token or consent that a later-dated call set before keeps its
    value, and ``last_seen_at`` only moves forward. Users named only by track, page, screen,
    group or alias calls (most of a busy stream) are upserted by one statement that moves
    ``last_seen_at`` and fills what is still empty; users with identify calls are read,
    locked and merged trait by trait.
    """
    ordered = {u: sorted(ms, key=lambda m: m.timestamp) for u, ms in messages_by_user.items()}
    seen_only = sorted(u for u, ms in ordered.items() if all(m.type != "identify" for m in ms))
    _touch_profiles(session, [(u, ordered[u]) for u in seen_only])
    identified = sorted(set(ordered) - set(seen_only))
    if identified:
        _merge_profiles(session, {u: ordered[u] for u in identified})


def _touch_profiles(session: Session, users: Sequence[tuple[str, Sequence[Message]]]) -> None:
    """Upsert the profiles of users whose calls carry no traits, in id order (two requests
    lock shared rows in the same order): a new row starts at the first call; a stored one
    keeps its fields, takes a later ``last_seen_at`` and fills an empty ``anonymous_id``,
    ``locale`` or ``timezone`` from the first call that has one (the weak fill of
    ``apply_context``)."""
    if not users:
        return
    rows = [_touched(user_id, messages) for user_id, messages in users]
    if session.get_bind().dialect.name == "postgresql":
        connection = session.connection().connection.driver_connection
        assert connection is not None
        with connection.cursor() as cursor:
            cursor.execute(_TOUCH_PG, [[row[c] for row in rows] for c in _TOUCHED])
    else:
        session.execute(_TOUCH, rows)


def _touched(user_id: str, messages: Sequence[Message]) -> dict[str, Any]:
    """The row :func:`_touch_profiles` upserts for a user's calls in event-time order: each
    of ``anonymous_id``, ``locale`` and ``timezone`` from the first call with a usable one
    (one pass over the calls, each parser run only until its field is found)."""
    anonymous_id = locale = timezone = None
    for message in messages:
        if anonymous_id is None:
            anonymous_id = message.anonymous_id
        if locale is None:
            locale = _COLUMNS["locale"](message.context.get("locale"))
        if timezone is None:
            timezone = _COLUMNS["timezone"](message.context.get("timezone"))
    return {
        "id": user_id,
        "anonymous_id": anonymous_id,
        "locale": locale,
        "timezone": timezone,
        "created_at": messages[0].timestamp,
        "last_seen_at": max(m.timestamp for m in messages),
        "updated_at": messages[-1].received_at,
    }


_TOUCHED = ("id", "anonymous_id", "locale", "timezone", "created_at", "last_seen_at", "updated_at")
_ON_CONFLICT = (
    " ON CONFLICT (id) DO UPDATE SET"
    " last_seen_at = CASE WHEN users.last_seen_at IS NULL"
    " OR excluded.last_seen_at > users.last_seen_at"
    " THEN excluded.last_seen_at ELSE users.last_seen_at END,"
    " updated_at = excluded.updated_at,"
    " anonymous_id = COALESCE(users.anonymous_id, excluded.anonymous_id),"
    " locale = COALESCE(users.locale, excluded.locale),"
    " timezone = COALESCE(users.timezone, excluded.timezone)"
)
_INSERT_USERS = (
    "INSERT INTO users (id, anonymous_id, locale, timezone, created_at, last_seen_at,"
    " updated_at, traits, tags, trait_times)"
)
# PostgreSQL: one statement whatever the number of users, each column one binary array
# (psycopg dumps lists of text and datetimes in C), rows in id order.
_TOUCH_PG = (
    _INSERT_USERS  # noqa: S608 - constants only; every value is a bound parameter
    + " SELECT id, anonymous_id, locale, timezone, created_at, last_seen_at,"
    " updated_at, '{}', '[]', '{}' FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[],"
    " %b::timestamptz[], %b::timestamptz[], %b::timestamptz[]) WITH ORDINALITY AS"
    " u(id, anonymous_id, locale, timezone, created_at, last_seen_at, updated_at, n)"
    " ORDER BY n" + _ON_CONFLICT
)
# SQLite: the same upsert, row by row (executemany of one short statement).
_TOUCH = text(
    _INSERT_USERS + " VALUES (:id, :anonymous_id, :locale, :timezone, :created_at,"
    " :last_seen_at, :updated_at, '{}', '[]', '{}')" + _ON_CONFLICT
).bindparams(
    bindparam("created_at", type_=UTCDateTime),
    bindparam("last_seen_at", type_=UTCDateTime),
    bindparam("updated_at", type_=UTCDateTime),
)


def _merge_profiles(session: Session, ordered: Mapping[str, Sequence[Message]]) -> None:
    """Insert the missing rows in one statement (``created_at`` = each user's first call),
    read and lock all rows in one (in id order, so two concurrent requests cannot deadlock on
    each other's rows), merge each user's calls in order and flush the changes together."""
    ids = sorted(ordered)
    new_rows: list[dict[str, Any]] = [
        {
            "id": user_id,
            "anonymous_id": ordered[user_id][0].anonymous_id,
            "traits": {},
            "tags": [],
            "created_at": ordered[user_id][0].timestamp,
            "last_seen_at": ordered[user_id][0].timestamp,
            "updated_at": ordered[user_id][0].received_at,
        }
        for user_id in ids
    ]
    users: dict[str, User] = {}
    for start in range(0, len(ids), _CHUNK):  # within every database's parameter limit
        insert_ignore_many(session, User, rows=new_rows[start : start + _CHUNK])
        users.update(
            (user.id, user)
            for user in session.scalars(
                select(User)
                .where(User.id.in_(ids[start : start + _CHUNK]))
                .order_by(User.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        )
    for user_id in ids:
        user = users[user_id]
        for message in ordered[user_id]:
            at = _happened_at(message)
            if message.type == "identify":
                apply_traits(user, message.traits, at=at)
                _apply_devices_and_consent(
                    session, user_id=user_id, traits=message.traits, at=at, now=message.received_at
                )
            apply_context(user, message, at=at)
            if user.anonymous_id is None and message.anonymous_id:
                user.anonymous_id = message.anonymous_id
            if user.last_seen_at is None or message.timestamp > user.last_seen_at:
                user.last_seen_at = message.timestamp
            user.updated_at = message.received_at


# Users per statement: well inside SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 500
