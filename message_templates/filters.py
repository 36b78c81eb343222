"""The filters templates may use: money and dates, per locale (babel), in the recipient's zone."""

from __future__ import annotations

from collections.abc import Mapping
from copy import copy
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton
from babel.numbers import get_currency_precision, get_currency_symbol, is_currency, parse_pattern
from jinja2 import pass_context
from jinja2.runtime import Context

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_CURRENCY = "CNY"
# Set as template globals by the renderer: the locale being rendered (number and date style),
# the platform's home locale (how its currency's symbol is written) and the default zone.
LOCALE_GLOBAL = "locale"
HOME_LOCALE_GLOBAL = "home_locale"
TIMEZONE_GLOBAL = "default_timezone"
_FALLBACK_LOCALE = "zh_CN"


def format_money(
    amount: int, *, currency: str = DEFAULT_CURRENCY, locale: str, home_locale: str | None = None
) -> str:
    """An amount in the currency's minor unit (fen for CNY), written for a locale.

    The locale decides the number's shape (grouping, decimal mark, where the sign and symbol
    go); the symbol is the one the platform's home market writes (``¥`` for CNY in zh-CN), so
    an English message to a customer in China says ``¥20``, not CLDR's ``CN¥20``. Decimals
    appear only when there are any: 2000 → ``¥20``, 2050 → ``¥20.50``, -500 → ``-¥5``.

    Args:
        amount: Integer minor units (money is never a float here).
        currency: ISO 4217 code.
        locale: The recipient's locale (``zh-CN``, ``en``, ``de_DE``...).
        home_locale: The locale the symbol is taken from; ``locale`` when None.

    Returns:
        The formatted amount.

    Raises:
        TypeError: ``amount`` is not an integer.
        ValueError: ``currency`` is not an ISO 4217 code babel knows.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"money expects an integer amount in fen (minor units), got {amount!r}")
    if not isinstance(currency, str) or not is_currency(currency):
        raise ValueError(f"unknown currency {currency!r} (expected an ISO 4217 code like CNY)")
    number_locale = _babel_locale(locale)
    symbol = get_currency_symbol(currency, _babel_locale(home_locale or locale))
    # The locale's own currency pattern with the symbol as a quoted literal, so the locale
    # places it (``¥20`` in zh and en, ``20 ¥`` in de) but does not rename it.
    quoted = "'" + symbol.replace("'", "''") + "'"
    pattern = parse_pattern(number_locale.currency_formats["standard"].pattern.replace("¤", quoted))
    value = Decimal(amount).scaleb(-get_currency_precision(currency))
    if value == value.to_integral_value():
        pattern = copy(pattern)
        pattern.frac_prec = (0, 0)
    return pattern.apply(value, number_locale, currency_digits=False)


@pass_context
def money(context: Context, amount: int, currency: str = DEFAULT_CURRENCY) -> str:
    """Template filter: ``{{ coupon.amount_fen | money }}`` → ``¥20`` (see :func:`format_money`).

    Args:
        context: The template context (passed by Jinja).
        amount: Integer minor units.
        currency: ISO 4217 code; CNY by default.

    Returns:
        The amount written for the locale being rendered.
    """
    return format_money(
        amount,
        currency=currency,
        locale=str(context.get(LOCALE_GLOBAL) or _FALLBACK_LOCALE),
        home_locale=str(context.get(HOME_LOCALE_GLOBAL) or _FALLBACK_LOCALE),
    )


@pass_context
def yuan(context: Context, fen: int) -> str:
    """Template filter: integer fen as yuan, ``{{ 2000 | yuan }}`` → ``¥20``.

    Args:
        context: The template context (passed by Jinja).
        fen: An amount in fen (¥1 = 100 fen).

    Returns:
        The amount written for the locale being rendered.
    """
    return money(context, fen, DEFAULT_CURRENCY)


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
    """Format the recipient's local date of an instant, as the locale writes a day and month.

    Args:
        context: The template context (passed by Jinja).
        value: As for :func:`local_datetime`.
        fmt: A ``strftime`` format; by default the locale's month-and-day form from babel
            (``3月9日`` in Chinese, ``Mar 9`` in English).

    Returns:
        The formatted local date.
    """
    local = _localize(context, value)
    if fmt is not None:
        return local.strftime(fmt)
    return format_skeleton("MMMd", local, locale=_babel_locale(context.get(LOCALE_GLOBAL)))


FILTERS = {
    "money": money,
    "yuan": yuan,
    "local_datetime": local_datetime,
    "local_date": local_date,
}


@lru_cache(maxsize=64)
def _babel_locale(name: object) -> Locale:
    # Template locales are spelled as their files write them (zh-CN, en, pt_BR); one babel
    # does not know falls back rather than stopping the send.
    if isinstance(name, str) and name:
        try:
            return Locale.parse(name.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            pass
    return Locale.parse(_FALLBACK_LOCALE)


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
