"""What the draft and versions pages show, and their actions (save a draft, publish it with
a note, roll back to a version), on :mod:`store.drafts`. The console's actor is "console"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from journeys.models import Journey
from journeys.problems import JourneyError, Problem
from journeys.validate import shipped_journey_files
from message_templates.render import TemplateRenderer
from store.db import SessionFactory, transaction
from store.drafts import (
    Published,
    check_source,
    draft_diff,
    draft_of,
    publish_draft,
    rollback,
    save_draft,
)
from store.journeys import history, latest_version

ACTOR = "console"
NOTICES = {
    "saved": "Draft saved. Nothing changed for users: publish it to make it live.",
    "published": "Published: new entries take this version; running ones keep theirs.",
    "unchanged": "Nothing to publish: the draft's journey equals the live version.",
    "rolledback": "Rolled back: the old YAML is live again as a new version.",
}


@dataclass(frozen=True)
class Line:
    """One line of the YAML being edited, with the problems that name it."""

    number: int
    text: str
    problems: list[Problem]


def annotated(source: str, problems: list[Problem]) -> tuple[list[Line], list[Problem]]:
    """The source's lines, each with its problems; and the problems that name no line."""
    by_line: dict[int, list[Problem]] = {}
    for problem in problems:
        if problem.line:
            by_line.setdefault(problem.line, []).append(problem)
    lines = [Line(n, text, by_line.pop(n, [])) for n, text in enumerate(source.splitlines(), 1)]
    unplaced = [p for p in problems if not p.line] + [p for ps in by_line.values() for p in ps]
    return lines, unplaced


def _shipped_source(journey_id: str) -> str | None:
    path = next((p for p in shipped_journey_files() if p.stem == journey_id), None)
    return path.read_text(encoding="utf-8") if path else None


class DraftPages:
    """The draft, versions and simulation pages' reads and actions."""

    def __init__(self, factory: SessionFactory, *, now: Callable[[], datetime]):
        self._factory = factory
        self._now = now

    @cached_property
    def _templates(self) -> TemplateRenderer:
        return TemplateRenderer()

    def _file(self, journey_id: str) -> str:
        return f"{journey_id} draft"

    def editing(self, journey_id: str) -> tuple[str, bool] | None:
        """The YAML the draft page edits (the draft, else the live version, else the shipped
        file) and whether it is a saved draft; None for a journey unknown to all three."""
        with self._factory() as session:
            draft = draft_of(session, journey_id=journey_id)
            if draft is not None:
                return draft.source, True
            live = latest_version(session, journey_id=journey_id)
        if live is not None:
            return live.source, False
        shipped = _shipped_source(journey_id)
        return None if shipped is None else (shipped, False)

    def draft(self, journey_id: str, *, source: str | None = None) -> dict[str, Any] | None:
        """The draft page: the YAML (``source`` as just typed, if given), its problems beside
        the lines they name, who saved the draft when, and its diff against live."""
        editing = self.editing(journey_id)
        if editing is None and source is None:
            return None
        with self._factory() as session:
            draft = draft_of(session, journey_id=journey_id)
            live = latest_version(session, journey_id=journey_id)
            diff = draft_diff(session, journey_id=journey_id)
            saved = None if draft is None else {"at": draft.saved_at, "by": draft.saved_by}
        text = source if source is not None else editing[0] if editing else ""
        checked = check_source(
            text, file=self._file(journey_id), templates=self._templates, journey_id=journey_id
        )
        lines, unplaced = annotated(text, checked.problems)
        return {
            "title": f"Draft · {journey_id}",
            "journey_id": journey_id,
            "source": text,
            "saved": saved,
            "live_version": live.version if live else None,
            "diff": diff,
            "problems": checked.problems,
            "errors": len(checked.errors),
            "lines": lines,
            "unplaced": unplaced,
        }

    def save(self, journey_id: str, text: str) -> None:
        with transaction(self._factory) as session:
            save_draft(session, journey_id=journey_id, source=text, saved_by=ACTOR, now=self._now())

    def publish(self, journey_id: str, note: str) -> Published:
        """Publish the draft with ``note``.

        Raises:
            LookupError: no draft.
            JourneyError: the draft has errors.
        """
        with transaction(self._factory) as session:
            return publish_draft(
                session,
                journey_id=journey_id,
                templates=self._templates,
                now=self._now(),
                note=note.strip() or None,
                published_by=ACTOR,
            )

    def versions(self, journey_id: str) -> dict[str, Any] | None:
        with self._factory() as session:
            entries = history(session, journey_id=journey_id)
            has_draft = draft_of(session, journey_id=journey_id) is not None
        if not entries:
            return None
        return {
            "title": f"Versions · {journey_id}",
            "journey_id": journey_id,
            "entries": entries,
            "live": entries[0].version.version,
            "has_draft": has_draft,
        }

    def rollback(self, journey_id: str, version: int, note: str) -> Published:
        """Roll back to ``version`` (a new version with its YAML).

        Raises:
            LookupError: no such version.
            JourneyError: its YAML no longer passes the checks.
        """
        with transaction(self._factory) as session:
            return rollback(
                session,
                journey_id=journey_id,
                version=version,
                templates=self._templates,
                now=self._now(),
                published_by=ACTOR,
                note=note.strip() or None,
            )

    def to_simulate(self, journey_id: str) -> tuple[Journey, str]:
        """The journey the draft page shows, checked, for a simulation.

        Raises:
            LookupError: the journey is unknown.
            JourneyError: it has errors (a simulation runs only a journey that could go live).
        """
        editing = self.editing(journey_id)
        if editing is None:
            raise LookupError(f"No journey {journey_id!r} is drafted, published or shipped.")
        source = editing[0]
        checked = check_source(
            source, file=self._file(journey_id), templates=self._templates, journey_id=journey_id
        )
        if checked.journey is None or checked.errors:
            raise JourneyError(checked.errors)
        return checked.journey, source
