"""What the audience pages show: the list (shipped and saved), one audience with a sample of
members and why each matched (a saved one with its versions), and the builder's preview and
save. The routes are in :mod:`console.routes.audiences`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml
from sqlalchemy.orm import Session

from audiences.audience import SHIPPED, Audience, shipped_audiences
from audiences.builder import KINDS, TYPES, Row, build, rows_from_rule
from audiences.describe import describe
from audiences.rules import COMPARE_OPS, TOPICS, AudienceError
from audiences.saved import named_audience, named_audiences, rule_yaml, save_audience
from kinds import names as channel_kinds
from store.db import SessionFactory, transaction
from store.models import SavedAudience
from store.saved_audiences import saved_versions

SAMPLE_SIZE = 20


def preview(session: Session, audience: Audience, now: datetime) -> dict[str, Any]:
    """The member count now and a sample of members, each with why they matched."""
    count = audience.count(session, now=now)
    members = audience.members(session, now=now, limit=SAMPLE_SIZE)
    why = audience.explain(session, user_ids=members, now=now) if members else {}
    return {"count": count, "sample": [{"id": m, "why": why.get(m, [])} for m in members]}


@dataclass(frozen=True)
class Saved:
    """A save that went through: the name and the version it made."""

    name: str
    version: int


class AudiencePages:
    """Read models of the audience pages, and the builder's save."""

    def __init__(self, factory: SessionFactory, *, now: Callable[[], datetime]):
        self._factory = factory
        self._now = now

    def listing(self) -> dict[str, Any]:
        shipped = shipped_audiences()
        with self._factory() as session:
            rows = [
                {
                    "id": a.id,
                    "name": a.name,
                    "description": a.description,
                    "rule": describe(a.rule),
                    "count": a.count(session, now=self._now()),
                    "saved": a.id not in shipped,
                }
                for a in named_audiences(session).values()
            ]
        return {"title": "Audiences", "audiences": rows}

    def audience(self, name: str) -> dict[str, Any] | None:
        with self._factory() as session:
            found = named_audience(session, name)
            if found is None:
                return None
            versions = [] if name in shipped_audiences() else saved_versions(session, name=name)
            shown = preview(session, found, self._now())
        return {
            "title": found.name,
            "audience": found,
            "rule": describe(found.rule),
            "versions": versions,
            "buildable": rows_from_rule(_rule_data(name, versions)) is not None,
            **shown,
        }

    def editable(self, name: str) -> tuple[str, list[Row], str] | None:
        """The builder's rows for an audience (combinator, rows, the name to save under), or
        None when there is no such audience. A shipped audience is a starting point: saving
        it needs a name of its own."""
        with self._factory() as session:
            found = named_audience(session, name)
            versions = saved_versions(session, name=name)
        if found is None:
            return None
        rows = rows_from_rule(_rule_data(name, versions))
        if rows is None:
            raise AudienceError(name, "this rule has no form in the builder; edit its YAML")
        return rows[0], rows[1], name if versions else ""

    def builder(self, combine: str, rows: list[Row]) -> dict[str, Any]:
        """The builder's state: its rows (a problem on the row it names), the rule as YAML,
        and, when the rule parses, the member count and a sample with why each matched."""
        built = build(combine, rows)
        page: dict[str, Any] = {
            "combine": combine,
            "rows": rows,
            "yaml": rule_yaml(built.data),
            "problem": built.error if not any(r.error for r in rows) else "",
            "kinds": {kind: label for kind, (label, _) in KINDS.items()},
            "ops": COMPARE_OPS,
            "types": TYPES,
            "channels": channel_kinds(),
            "topics": TOPICS,
            "count": None,
            "sample": [],
        }
        if built.rule is not None:
            with self._factory() as session:
                page |= preview(session, Audience("builder", "builder", built.rule), self._now())
        return page

    def save(self, *, name: str, source: str, saved_by: str, note: str) -> Saved:
        """Save ``source`` as ``name``'s next version; raises :class:`AudienceError`."""
        with transaction(self._factory) as session:
            row = save_audience(
                session, name=name, source=source, saved_by=saved_by, note=note, now=self._now()
            )
            return Saved(row.name, row.version)


def _rule_data(name: str, versions: list[SavedAudience]) -> Any:
    """The rule mapping as written: the latest saved version's, else the shipped file's."""
    if versions:
        return yaml.safe_load(versions[0].source)
    return yaml.safe_load((SHIPPED / f"{name}.yaml").read_text("utf-8"))["rule"]
