"""Journey drafts and checked publishing: save an edit without publishing it (problems and
all), compare it with the live version, publish it with a note and an author, and roll a
journey back to an earlier version (a new version with the old YAML; history is never
rewritten).

Publishing here is checked as ``lifecycle journeys validate`` checks a file: the YAML parses,
its events are in the catalogue and its templates exist and render. A draft is saved even
when it fails those checks; it is published only when it passes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from journeys.catalog import load_catalog
from journeys.models import Journey
from journeys.problems import JourneyError, Lines, Problem, line_for, line_index
from journeys.validate import TemplateCatalog, check_events, check_templates, parse_journey
from store.journeys import latest_version, publish, source_diff, version_of
from store.models import JourneyDraft, JourneyVersion
from store.saved_audiences import saved_names

__all__ = [
    "Checked",
    "Published",
    "check_source",
    "discard_draft",
    "draft_diff",
    "draft_of",
    "publish_checked",
    "publish_draft",
    "rollback",
    "save_draft",
]


@dataclass(frozen=True)
class Checked:
    """A journey YAML as checked: the journey if it parses, and every problem found."""

    journey: Journey | None
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


@dataclass(frozen=True)
class Published:
    """The version a checked publish left live; ``changed`` is False when the YAML's journey
    equalled the latest version, which stays as it was."""

    version: JourneyVersion
    changed: bool


def check_source(
    text: str,
    *,
    file: str,
    templates: TemplateCatalog,
    journey_id: str | None = None,
    saved_audiences: Collection[str] | None = None,
) -> Checked:
    """Check a journey YAML as publishing does, naming the line and field of each problem.

    With ``journey_id``, the YAML must keep that id (a draft belongs to its journey).
    ``saved_audiences`` are the names a schedule may name besides the shipped audiences;
    publishing passes the database's (without them, an unknown name is only a warning).
    """
    try:
        journey = parse_journey(text, file=file)
    except JourneyError as exc:
        return Checked(None, list(exc.problems))
    lines: Lines = {}
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:  # it parsed, so it is a mapping
        line_index(root, (), lines)
    problems: list[Problem] = []
    if journey_id is not None and journey.id != journey_id:
        problems.append(
            Problem(
                file,
                line_for(lines, ("id",)),
                "id",
                f"this is {journey_id!r}: its id stays {journey_id!r} (the YAML says "
                f"{journey.id!r}); to make a new journey, publish a new file",
            )
        )
    catalog = load_catalog()
    problems += check_events(
        journey, catalog, file=file, lines=lines, saved_audiences=saved_audiences
    )
    problems += check_templates(journey, templates, file=file, lines=lines, catalog=catalog)
    return Checked(journey, problems)


def publish_checked(
    session: Session,
    *,
    source: str,
    file: str,
    templates: TemplateCatalog,
    now: datetime,
    note: str | None,
    published_by: str | None,
    journey_id: str | None = None,
) -> Published:
    """Check ``source`` and publish it as a new version with its note and author.

    Raises:
        JourneyError: the YAML has errors (warnings do not stop it).
    """
    checked = check_source(
        source,
        file=file,
        templates=templates,
        journey_id=journey_id,
        saved_audiences=saved_names(session),
    )
    if checked.journey is None or checked.errors:
        raise JourneyError(checked.errors)
    before = latest_version(session, journey_id=checked.journey.id)
    row = publish(
        session,
        journey=checked.journey,
        source=source,
        now=now,
        note=note,
        published_by=published_by,
    )
    return Published(row, changed=before is None or before.id != row.id)


def draft_of(session: Session, *, journey_id: str) -> JourneyDraft | None:
    return session.scalar(select(JourneyDraft).where(JourneyDraft.journey_id == journey_id))


def save_draft(
    session: Session, *, journey_id: str, source: str, saved_by: str, now: datetime
) -> JourneyDraft:
    """Keep ``source`` as the journey's draft, replacing the one before; nothing goes live."""
    draft = draft_of(session, journey_id=journey_id)
    if draft is None:
        draft = JourneyDraft(journey_id=journey_id, source=source, saved_at=now, saved_by=saved_by)
        session.add(draft)
    else:
        draft.source, draft.saved_at, draft.saved_by = source, now, saved_by
    session.flush()
    return draft


def discard_draft(session: Session, *, journey_id: str) -> bool:
    """Drop the journey's draft; whether there was one."""
    draft = draft_of(session, journey_id=journey_id)
    if draft is not None:
        session.delete(draft)
        session.flush()
    return draft is not None


def draft_diff(session: Session, *, journey_id: str) -> str | None:
    """The draft against the live version as a unified diff ("" when they are the same
    text; the whole draft when nothing is published); None without a draft."""
    draft = draft_of(session, journey_id=journey_id)
    if draft is None:
        return None
    live = latest_version(session, journey_id=journey_id)
    return source_diff(
        live.source if live else "",
        draft.source,
        before_name=f"{journey_id} v{live.version} (live)" if live else "/dev/null",
        after_name=f"{journey_id} draft",
    )


def publish_draft(
    session: Session,
    *,
    journey_id: str,
    templates: TemplateCatalog,
    now: datetime,
    note: str | None,
    published_by: str | None,
) -> Published:
    """Publish the journey's draft, checked as any publish is, and drop the draft.

    Raises:
        LookupError: the journey has no draft.
        JourneyError: the draft has errors; it stays as it is.
    """
    draft = draft_of(session, journey_id=journey_id)
    if draft is None:
        raise LookupError(f"{journey_id} has no draft: lifecycle journeys draft save FILE")
    published = publish_checked(
        session,
        source=draft.source,
        file=f"{journey_id} draft",
        templates=templates,
        now=now,
        note=note,
        published_by=published_by,
        journey_id=journey_id,
    )
    discard_draft(session, journey_id=journey_id)
    return published


def rollback(
    session: Session,
    *,
    journey_id: str,
    version: int,
    templates: TemplateCatalog,
    now: datetime,
    published_by: str | None,
    note: str | None = None,
) -> Published:
    """Publish version ``version``'s YAML again as a new version, noted "rolled back to vN"
    (and ``note``); new entries take it, running ones keep theirs. The YAML is checked
    against today's templates and events, as any publish is.

    Raises:
        LookupError: the journey has no such version.
        JourneyError: the old YAML no longer passes the checks.
    """
    row = version_of(session, journey_id=journey_id, version=version)
    if row is None:
        raise LookupError(f"{journey_id} has no version {version}: lifecycle journeys history")
    said = f"rolled back to v{version}" + (f": {note}" if note else "")
    return publish_checked(
        session,
        source=row.source,
        file=f"{journey_id} v{version}",
        templates=templates,
        now=now,
        note=said,
        published_by=published_by,
        journey_id=journey_id,
    )
