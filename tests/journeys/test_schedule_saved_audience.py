"""A journey's schedule may name a saved audience: publishing checks the name against the
shipped and saved audiences, and the name means the latest saved version at each tick (the
command line, the console's publish and the simulation alike)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Database
from sqlalchemy import delete

from audiences.saved import save_audience
from audiences.swept import swept_audience
from cli import main
from journeys.models import Schedule
from journeys.problems import JourneyError
from journeys.schedule import UnknownAudience
from journeys.validate import load_journey, parse_journey
from message_templates.render import TemplateRenderer
from simulate.server import SimulationError
from simulate.ticks import saved_schedule_audiences, sweeps_of
from store.db import transaction
from store.drafts import publish_checked
from store.journeys import latest_version
from store.models import SavedAudience

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)

JOURNEY = """\
id: vip_weekly
name: VIP weekly
trigger:
  schedule:
    cron: "0 10 * * 1"
    audience: {audience}
goal: {{event: order_placed, within: 7d}}
re_entry: {{after: 7d}}
steps:
  - {{id: pause, type: wait, duration: 1d}}
"""


def save(db: Database, name: str, source: str) -> int:
    with transaction(db.factory) as session:
        row = save_audience(session, name=name, source=source, saved_by="ana", note="", now=NOW)
        return row.version


def publish(db: Database, audience: str) -> int:
    with transaction(db.factory) as session:
        published = publish_checked(
            session,
            source=JOURNEY.format(audience=audience),
            file="vip_weekly.yaml",
            templates=TemplateRenderer(),
            now=NOW,
            note=None,
            published_by="ana",
        )
        return published.version.version


def test_publishing_refuses_a_name_nobody_has_and_lists_the_names_there_are(db: Database):
    save(db, "vip_shanghai", "tag: vip\n")
    with pytest.raises(JourneyError) as caught:
        publish(db, "vip_shangai")
    [problem] = caught.value.problems
    assert problem.field == "trigger.schedule.audience"
    assert problem.line == 6  # the audience line
    assert "unknown audience 'vip_shangai'" in problem.message
    assert "shipped: " in problem.message and "dormant_30d" in problem.message
    assert "saved: vip_shanghai" in problem.message
    with db.factory() as session:
        assert latest_version(session, journey_id="vip_weekly") is None

    assert publish(db, "vip_shanghai") == 1
    assert publish(db, "dormant_30d") == 2  # a shipped name as before


def test_the_command_line_publishes_a_saved_name_and_refuses_an_unknown_one(
    db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
):
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", db.url)
    path = tmp_path / "vip_weekly.yaml"
    path.write_text(JOURNEY.format(audience="vip_shanghai"), encoding="utf-8")

    assert main(["journeys", "publish", str(path)]) != 0
    err = capsys.readouterr().err
    assert "trigger.schedule.audience" in err and "unknown audience 'vip_shanghai'" in err
    assert "saved: none" in err

    save(db, "vip_shanghai", "tag: vip\n")
    assert main(["journeys", "publish", str(path)]) == 0
    assert "vip_weekly: version 1 published" in capsys.readouterr().out


def test_without_a_database_a_name_that_is_not_shipped_is_a_warning(tmp_path: Path):
    path = tmp_path / "vip_weekly.yaml"
    path.write_text(JOURNEY.format(audience="vip_shanghai"), encoding="utf-8")
    warnings: list = []
    load_journey(path, TemplateRenderer(), warnings=warnings)
    [warning] = warnings
    assert warning.field == "trigger.schedule.audience"
    assert "publishing checks that an audience is saved as 'vip_shanghai'" in warning.message
    # A name no audience could have is an error at once.
    path.write_text(JOURNEY.format(audience="'VIP Shanghai'"), encoding="utf-8")
    with pytest.raises(JourneyError, match="unknown audience 'VIP Shanghai'"):
        load_journey(path, TemplateRenderer())


def test_the_name_means_the_latest_version_or_the_one_a_sweep_began_with(db: Database):
    schedule = Schedule(cron="0 10 * * 1", audience="vip_shanghai")
    save(db, "vip_shanghai", "tag: vip\n")
    save(db, "vip_shanghai", "tag: svip\n")
    with db.factory() as session:
        latest = swept_audience(session, schedule)
        assert (latest.version, latest.label) == (2, "vip_shanghai v2")
        assert "svip" in repr(latest.audience.rule)
        pinned = swept_audience(session, schedule, version=1)
        assert pinned.version == 1 and "svip" not in repr(pinned.audience.rule)
        shipped = swept_audience(session, Schedule(cron="0 10 * * 1", audience="dormant_30d"))
        assert (shipped.version, shipped.label) == (None, "dormant_30d")
    with transaction(db.factory) as session:
        session.execute(delete(SavedAudience).where(SavedAudience.name == "vip_shanghai"))
    with db.factory() as session, pytest.raises(UnknownAudience) as caught:
        swept_audience(session, schedule)
    assert caught.value.path == "trigger.schedule.audience"
    assert "unknown audience 'vip_shanghai'" in str(caught.value)


def test_the_simulation_sweeps_the_saved_audience_of_the_database_it_would_publish_to(
    db: Database,
):
    from config import Settings

    settings = Settings(environment="development", database_url=db.url)
    journey = parse_journey(JOURNEY.format(audience="vip_shanghai"))
    with pytest.raises(SimulationError, match="journey vip_weekly: .*'vip_shanghai'"):
        saved_schedule_audiences(settings, [journey])
    save(db, "vip_shanghai", "tag: vip\n")
    saved = saved_schedule_audiences(settings, [journey])
    [swept] = sweeps_of([journey], NOW, saved)
    assert swept.audience.id == "vip_shanghai" and "vip" in repr(swept.audience.rule)
    # Shipped and inline audiences need no database.
    elsewhere = Settings(environment="development", database_url="sqlite:////nonexistent/x.db")
    assert (
        saved_schedule_audiences(elsewhere, [parse_journey(JOURNEY.format(audience="dormant_30d"))])
        == {}
    )
