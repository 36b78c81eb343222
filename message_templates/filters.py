"""The filters templates may use: money in yuan, instants in the recipient's time zone."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import pass_context
from jinja2.runtime import Context

DEFAULT_TIMEZONE = "Asia/Shanghai"
# Set as a template global by the renderer; read here to pick a date style per language.
LOCALE_GLOBAL = "locale"
TIMEZONE_GLOBAL = "default_timezone"


def yuan(fen: int) -> str:
    """Integer fen as yuan: 2000 → ``¥20``, 1990 → ``¥19.90``, -500 → ``-¥5``.

    Args:
        fen: An amount in fen (¥1 = 100 fen).

    Returns:
        The amount with a ``¥`` sign, decimals only when there are any.

    Raises:
        TypeError: ``fen`` is not an integer (money is never a float here).
    """
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"yuan expects an integer amount in fen, got {fen!r}")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole}" if cents == 0 else f"{sign}¥{whole}.{cents:02d}"


@pass_context
def local_datetime(context: Context, value: datetime | str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Format an instant in the recipient's time zone (``user.timezone``).

    Args:
        context: The template context (passed by Jinja).
        value: An aware datetime, or an ISO 8601 string (what a datetime becomes after a
            JSON round trip). A naive datetime is taken as UTC, as the store keeps instants.
        fmt: A ``strftime`` format.

    Returns:
        The formatted local time.
    """
    return _localize(context, value).strftime(fmt)


@pass_context
def local_date(context: Context, value: datetime | str, fmt: str | None = None) -> str:
    """Format the recipient's local date of an instant: ``3月9日`` in Chinese, else ISO.

    Args:
        context: The template context (passed by Jinja).
        value: As for :func:`local_datetime`.
        fmt: A ``strftime`` format; by default ``3月9日`` for Chinese, ``2025-03-09`` otherwise.

    Returns:
        The formatted local date.
    """
    local = _localize(context, value)
    if fmt is not None:
        return local.strftime(fmt)
    if str(context.get(LOCALE_GLOBAL, "")).lower().startswith("zh"):
        # strftime cannot drop leading zeros portably, and "03月09日" reads clumsily.
        return f"{local.month}月{local.day}日"
    return local.strftime("%Y-%m-%d")


FILTERS = {"yuan": yuan, "local_datetime": local_datetime, "local_date": local_date}


def _localize(context: Context, value: datetime | str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected a datetime or ISO 8601 text, got {value!r}") from None
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(_zone(context))


def _zone(context: Context) -> ZoneInfo:
    fallback = str(context.get(TIMEZONE_GLOBAL) or DEFAULT_TIMEZONE)
    user = context.get("user")
    name = user.get("timezone") if isinstance(user, Mapping) else None
    # A profile's time zone is whatever the platform sent; a bad one should not stop the send.
    for candidate in (name, fallback):
        if isinstance(candidate, str) and candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo(DEFAULT_TIMEZONE)
