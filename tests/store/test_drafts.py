"""Journey drafts and versions on SQLite and PostgreSQL: a draft is saved with its problems,
compared with the live version, published with a note and an author; the history shows who,
when, why and what changed; a rollback is a new version with the old YAML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import Database

from enrollment.versions import JourneySpecs
from journeys.problems import JourneyError
from journeys.validate import parse_journey, shipped_journey_files
from message_templates.render import TemplateRenderer
from store.db import transaction
from store.drafts import (
    Published,
    check_source,
    draft_diff,
    draft_of,
    publish_checked,
    publish_draft,
    rollback,
    save_draft,
)
from store.journeys import history, latest_version, publish

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
SOURCE = next(p for p in shipped_journey_files() if p.stem == "new_user_coupon").read_text()
EDITED = SOURCE.replace("holdout: 10 ", "holdout: 20 ")
BROKEN = SOURCE.replace("template: new_user_reminder_push", "template: no_such_template")


@pytest.fixture(scope="module")
def templates() -> TemplateRenderer:
    return TemplateRenderer()


def publish_v1(db: Database) -> None:
    with transaction(db.factory) as session:
        publish(session, journey=parse_journey(SOURCE), source=SOURCE, now=T0)


def test_check_source_names_the_line_and_field_of_each_problem(templates) -> None:
    assert check_source(SOURCE, file="f", templates=templates).problems == []

    (problem,) = check_source(BROKEN, file="f", templates=templates).errors
    assert problem.line == BROKEN.splitlines().index("    template: no_such_template") + 1
    assert problem.field == "steps[3].template"
    assert "no_such_template" in problem.message

    unparsed = check_source(
        SOURCE.replace("duration: 2d", "duration: two days"), file="f", templates=templates
    )
    assert unparsed.journey is None and unparsed.errors[0].field == "steps[2].duration"

    renamed = check_source(SOURCE, file="f", templates=templates, journey_id="other")
    (problem,) = renamed.errors
    assert (problem.field, problem.line) == ("id", 3)


def test_a_draft_is_saved_with_or_without_problems_and_nothing_goes_live(db: Database) -> None:
    publish_v1(db)
    with transaction(db.factory) as session:
        save_draft(session, journey_id="new_user_coupon", source=BROKEN, saved_by="ana", now=T0)
    with transaction(db.factory) as session:
        saved = save_draft(
            session, journey_id="new_user_coupon", source=EDITED, saved_by="bo", now=T0
        )
        assert saved.saved_by == "bo"
    with db.factory() as session:
        draft = draft_of(session, journey_id="new_user_coupon")
        assert draft is not None and draft.source == EDITED
        live = latest_version(session, journey_id="new_user_coupon")
        assert live is not None and (live.version, live.source) == (1, SOURCE)
    # A draft of a journey never published is kept too.
    with transaction(db.factory) as session:
        save_draft(session, journey_id="fresh", source="id: [", saved_by="ana", now=T0)
    with db.factory() as session:
        assert draft_of(session, journey_id="fresh") is not None


def test_the_draft_diff_against_the_live_version(db: Database) -> None:
    publish_v1(db)
    with transaction(db.factory) as session:
        assert draft_diff(session, journey_id="new_user_coupon") is None
        save_draft(session, journey_id="new_user_coupon", source=EDITED, saved_by="a", now=T0)
        diff = draft_diff(session, journey_id="new_user_coupon")
    assert diff is not None
    lines = diff.splitlines()
    assert lines[:2] == ["--- new_user_coupon v1 (live)", "+++ new_user_coupon draft"]
    changed = [line for line in lines[2:] if line[:1] in "+-" and not line.startswith("@@")]
    assert changed == [
        "-holdout: 10          # percent of entrants who get nothing, to measure lift",
        "+holdout: 20          # percent of entrants who get nothing, to measure lift",
    ]


def test_publishing_a_draft_keeps_the_note_and_author_and_drops_the_draft(
    db: Database, templates
) -> None:
    publish_v1(db)
    with transaction(db.factory) as session:
        save_draft(session, journey_id="new_user_coupon", source=BROKEN, saved_by="a", now=T0)
    with pytest.raises(JourneyError, match="no_such_template"), transaction(db.factory) as s:
        publish_draft(
            s,
            journey_id="new_user_coupon",
            templates=templates,
            now=T0,
            note="x",
            published_by="ana",
        )
    with transaction(db.factory) as session:
        assert draft_of(session, journey_id="new_user_coupon") is not None  # still there
        save_draft(session, journey_id="new_user_coupon", source=EDITED, saved_by="a", now=T0)
        published = publish_draft(
            session,
            journey_id="new_user_coupon",
            templates=templates,
            now=T0 + timedelta(hours=1),
            note="a bigger holdout",
            published_by="ana",
        )
        assert published.changed
        row = published.version
        assert (row.version, row.note, row.published_by, row.source) == (
            2,
            "a bigger holdout",
            "ana",
            EDITED,
        )
        assert draft_of(session, journey_id="new_user_coupon") is None
        with pytest.raises(LookupError, match="no draft"):
            publish_draft(
                session,
                journey_id="new_user_coupon",
                templates=templates,
                now=T0,
                note=None,
                published_by="ana",
            )


def test_history_shows_who_when_note_and_each_diff_newest_first(db: Database, templates) -> None:
    publish_v1(db)  # published before notes and authors were kept: neither
    with transaction(db.factory) as session:
        publish_checked(
            session,
            source=EDITED,
            file="f",
            templates=templates,
            now=T0 + timedelta(days=1),
            note="more holdout",
            published_by="ana",
        )
    with db.factory() as session:
        entries = history(session, journey_id="new_user_coupon")
    assert [(e.version.version, e.version.note, e.version.published_by) for e in entries] == [
        (2, "more holdout", "ana"),
        (1, None, None),
    ]
    assert entries[0].version.published_at == T0 + timedelta(days=1)
    assert "-holdout: 10 " in entries[0].diff and "+holdout: 20 " in entries[0].diff
    assert entries[1].diff.startswith("--- /dev/null\n+++ new_user_coupon v1\n")
    assert entries[1].diff.count("\n+") == len(SOURCE.splitlines()) + 1  # the +++ line too


def roll_back(db: Database, templates: TemplateRenderer, version: int, **kw: object) -> Published:
    with transaction(db.factory) as session:
        return rollback(
            session,
            journey_id="new_user_coupon",
            version=version,
            templates=templates,
            now=T0 + timedelta(days=2),
            published_by="bo",
            **kw,  # type: ignore[arg-type]
        )


def test_rollback_is_a_new_version_with_the_old_yaml_and_new_entries_take_it(
    db: Database, templates
) -> None:
    publish_v1(db)
    with transaction(db.factory) as session:
        publish_checked(
            session,
            source=EDITED,
            file="f",
            templates=templates,
            now=T0,
            note=None,
            published_by="ana",
        )
    back = roll_back(db, templates, 1, note="holdout too big")
    assert back.changed
    assert (back.version.version, back.version.source, back.version.note) == (
        3,
        SOURCE,
        "rolled back to v1: holdout too big",
    )
    with db.factory() as session:
        entries = history(session, journey_id="new_user_coupon")
        assert [e.version.version for e in entries] == [3, 2, 1]
        ((version, journey),) = JourneySpecs().published(session)
    assert (version, journey) == (3, parse_journey(SOURCE))
    assert journey.holdout == 10

    with pytest.raises(LookupError, match="no version 9"):
        roll_back(db, templates, 9)
    # Rolling back to what is live already changes nothing.
    same = roll_back(db, templates, 1)
    assert not same.changed and same.version.version == 3
