"""Audiences by name: the shipped ones and those saved from the console's builder.

:func:`named_audience` is the one lookup for a name a marketer writes (``lifecycle audiences
count NAME``, a journey's schedule, a broadcast): a shipped audience first, else the latest
saved version. A saved name may not shadow a shipped one, so the order never hides a save.
"""

from __future__ import annotations

from datetime import datetime

import yaml
from sqlalchemy.orm import Session

from audiences.audience import ID_PATTERN, Audience, shipped_audiences
from audiences.rules import AudienceError, Rule, parse_rule
from store.models import SavedAudience
from store.saved_audiences import add_version, latest_of_each, latest_saved, saved_version

# "adhoc" is what an unnamed rule is called; "new" is the console's builder (/audiences/new).
RESERVED = frozenset({"adhoc", "new"})


def rule_yaml(data: object) -> str:
    """A rule as YAML text that ``lifecycle audiences validate`` accepts as written."""
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=False)


def parse_rule_text(source: str, *, where: str = "rule") -> Rule:
    """A rule from YAML text; errors name ``where`` and the path inside the rule."""
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise AudienceError(where, f"not valid YAML/JSON: {exc}") from None
    return parse_rule(data, where)


def saved_audience(row: SavedAudience) -> Audience:
    """The audience one saved version means."""
    rule = parse_rule_text(row.source, where=f"saved audience {row.name} v{row.version}: rule")
    return Audience(row.name, row.name, rule, row.note)


def named_audience(session: Session, name: str) -> Audience | None:
    """The shipped audience ``name``, else the latest saved version of it, else None."""
    found = named_version(session, name)
    return None if found is None else found[0]


def named_version(
    session: Session, name: str, *, version: int | None = None
) -> tuple[Audience, int | None] | None:
    """The shipped audience ``name`` (its version None), else the saved one with its version:
    the latest, or ``version`` when given (a sweep keeps the version its tick began with).
    None when no such audience (or version) exists."""
    shipped = shipped_audiences().get(name)
    if shipped is not None:
        return shipped, None
    if version is None:
        row = latest_saved(session, name=name)
    else:
        row = saved_version(session, name=name, version=version)
    return None if row is None else (saved_audience(row), row.version)


def named_audiences(session: Session) -> dict[str, Audience]:
    """Every audience a name can be given for: the shipped ones, then the saved ones."""
    found = shipped_audiences()
    for row in latest_of_each(session):
        found.setdefault(row.name, saved_audience(row))
    return found


def check_name(name: str) -> None:
    """Refuse a name that is not an audience id or that a shipped audience already has."""
    if not ID_PATTERN.match(name):
        raise AudienceError("name", "lower-case letters, digits and '_', e.g. vip_shanghai")
    if name in shipped_audiences():
        raise AudienceError("name", f"{name!r} is a shipped audience; choose another name")
    if name in RESERVED:
        raise AudienceError("name", f"{name!r} is reserved; choose another name")


def save_audience(
    session: Session, *, name: str, source: str, saved_by: str, note: str, now: datetime
) -> SavedAudience:
    """Check the name and the rule, then store the rule as ``name``'s next version.

    Raises:
        AudienceError: the name is unusable or taken by a shipped audience, or the rule
            does not parse (the path names where).
    """
    check_name(name)
    parse_rule_text(source)
    return add_version(session, name=name, source=source, saved_by=saved_by, note=note, now=now)
