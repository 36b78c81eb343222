"""The ``lifecycle`` command line, run in-process against a SQLite file."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli import main
from store.db import make_engine, make_session_factory, transaction
from store.models import Enrollment, Event, User
from workflows.ids import journey_workflow_id

COMMANDS = [
    "demo",
    "simulate",
    "dev",
    "api",
    "worker",
    "migrate",
    "journeys",
    "report",
    "kpi",
    "runs",
    "pause-all",
    "resume-all",
    "templates",
    "send-test",
    "scheduler",
    "sweeps",
    "audiences",
    "outbox",
    "events",
    "users",
    "broadcast",
]
SUBCOMMANDS = [
    *([c] for c in COMMANDS),
    ["journeys", "validate"],
    ["journeys", "publish"],
    ["journeys", "list"],
    ["journeys", "show"],
    ["journeys", "pause"],
    ["journeys", "resume"],
    ["journeys", "schema"],
    ["journeys", "history"],
    ["journeys", "rollback"],
    ["journeys", "draft", "save"],
    ["journeys", "draft", "show"],
    ["journeys", "draft", "diff"],
    ["journeys", "draft", "publish"],
    ["runs", "where"],
    ["runs", "eject"],
    ["audiences", "validate"],
    ["audiences", "count"],
    ["audiences", "preview"],
    ["templates", "preview"],
    ["templates", "send-test"],
    ["events", "rejected"],
    ["events", "replay"],
    ["users", "forget"],
    ["users", "timeline"],
    ["users", "find"],
    ["broadcast", "start"],
    ["broadcast", "status"],
    ["broadcast", "pause"],
    ["broadcast", "resume"],
    ["broadcast", "cancel"],
    ["broadcast", "list"],
    ["sweeps", "list"],
    ["sweeps", "run"],
]

BAD_JOURNEY = """\
id: bad_journey
name: Two mistakes
trigger:
  event: user_signed_up
steps:
  - id: pause
    type: wait
    duration: 4x
  - id: hello
    type: send
    channel: fax
    template: new_user_welcome_sms
"""


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite file for the CLI, and no stray settings from the environment or .env."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "LIFECYCLE_ENVIRONMENT",
        "LIFECYCLE_WRITE_KEY",
        "LIFECYCLE_ADMIN_TOKEN",
        "LIFECYCLE_UNSUBSCRIBE_SECRET",
        "LIFECYCLE_API_PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", url)
    return url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lifecycle: ")
    return lines[0]


# --- help -----------------------------------------------------------------------------------


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    listed = re.findall(r"^ {4}([\w-]+)\s", out, flags=re.MULTILINE)
    assert listed == COMMANDS


@pytest.mark.parametrize("argv", SUBCOMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: lifecycle {' '.join(argv)}" in out
    assert re.search(r"^example:\n  (\w+=\S+ )*lifecycle", out, re.MULTILINE)


# --- journeys -------------------------------------------------------------------------------


def test_migrate_publish_and_list(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "migrate")
    assert code == 0
    assert "up to date" in out

    code, out, _ = run(capsys, "journeys", "list")
    assert (code, out) == (0, "no journeys published yet: lifecycle journeys publish\n")

    code, out, err = run(capsys, "journeys", "publish")
    assert (code, err) == (0, "")
    assert "new_user_coupon: version 1 published" in out.splitlines()

    code, out, _ = run(capsys, "journeys", "list")
    assert code == 0
    assert re.search(r"^new_user_coupon\s+v1\s+published\s", out, re.MULTILINE), out

    # Publishing the same files again makes no new version.
    code, out, _ = run(capsys, "journeys", "publish")
    assert code == 0
    assert "new_user_coupon: version 1 published" in out.splitlines()
    code, out, _ = run(capsys, "journeys", "list")
    assert re.search(r"^new_user_coupon\s+v1\s+published\s", out, re.MULTILINE), out
    assert "v2" not in out


def test_journeys_show_pause_and_resume(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "migrate")[0] == 0
    assert run(capsys, "journeys", "publish")[0] == 0
    code, _, err = run(capsys, "journeys", "show", "no_such_journey")
    assert code == 1
    assert (
        assert_one_line_error(err) == "lifecycle: no journey 'no_such_journey' has been published"
    )

    now = datetime(2026, 6, 1, tzinfo=UTC)
    with transaction(make_session_factory(make_engine(database_url))) as session:
        for user, reason in (
            ("u1", None),
            ("u2", "converted"),
            ("u3", "converted"),
            ("u4", "completed"),
        ):
            session.add(
                Enrollment(
                    journey_id="new_user_coupon",
                    journey_version=1,
                    user_id=user,
                    group="treatment",
                    workflow_id=journey_workflow_id("new_user_coupon", user),
                    entered_at=now,
                    exited_at=now if reason else None,
                    exit_reason=reason,
                )
            )
    code, out, _ = run(capsys, "journeys", "show", "new_user_coupon")
    assert code == 0
    head = out.splitlines()
    assert head[0].startswith("new_user_coupon v1 (published, published ")
    assert head[1] == "runs: 1 running; ended: completed 1, converted 2"
    assert "id: new_user_coupon" in out

    assert run(capsys, "journeys", "pause", "new_user_coupon")[1] == (
        "new_user_coupon: version 1 paused\n"
    )
    assert "(paused, published " in run(capsys, "journeys", "show", "new_user_coupon")[1]
    assert run(capsys, "journeys", "resume", "new_user_coupon")[1] == (
        "new_user_coupon: version 1 published\n"
    )
    code, _, err = run(capsys, "journeys", "pause", "no_such_journey")
    assert code == 1
    assert_one_line_error(err)


def test_validate_shipped_journeys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "journeys", "validate")
    assert (code, err) == (0, "")
    assert re.search(r"new_user_coupon\.yaml: ok \(new_user_coupon, \d+ steps\)", out)


def test_validate_prints_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_JOURNEY, encoding="utf-8")

    code, out, err = run(capsys, "journeys", "validate", str(bad))

    assert code == 1
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith(
        f"lifecycle: {bad}:8: steps[0].duration: step 1 ('pause'), field `duration`: "
        "malformed duration '4x'"
    )
    assert lines[1] == (
        f"{bad}:11: steps[1].channel: step 2 ('hello'), field `channel` is 'fax'; "
        "it should be 'sms', 'email' or 'push'"
    )


def test_publish_refuses_a_bad_journey_and_publishes_nothing(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_JOURNEY, encoding="utf-8")
    assert run(capsys, "migrate")[0] == 0

    code, _, err = run(capsys, "journeys", "publish", str(bad))
    assert code == 1
    assert f"{bad}:8:" in err

    code, out, _ = run(capsys, "journeys", "list")
    assert out.startswith("no journeys published yet")


def test_validate_reports_a_yaml_syntax_error_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_JOURNEY.replace("name: Two mistakes", "name: Two: mistakes"))

    code, _, err = run(capsys, "journeys", "validate", str(bad))

    assert code == 1
    line = assert_one_line_error(err)
    assert line.startswith(f"lifecycle: {bad}:2: not valid YAML")


# --- outbox and users -----------------------------------------------------------------------


def test_outbox_of_a_new_database_is_empty(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "migrate")[0] == 0
    code, out, err = run(capsys, "outbox")
    assert (code, out, err) == (0, "the outbox is empty\n", "")


def test_commands_before_migrate_say_to_migrate(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "outbox")
    assert code == 1
    assert "migrate" in assert_one_line_error(err)


def test_timeline_of_an_unknown_user(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "migrate")[0] == 0
    code, out, err = run(capsys, "users", "timeline", "nobody-42")
    assert (code, out) == (1, "")
    assert assert_one_line_error(err) == "lifecycle: nothing recorded for user 'nobody-42'"


def test_timeline_of_a_known_user(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "migrate")[0] == 0
    at = datetime(2026, 3, 1, 2, 0, 5, tzinfo=UTC)
    engine = make_engine(database_url)
    with transaction(make_session_factory(engine)) as session:
        session.add(
            Event(
                message_id="m-1",
                type="track",
                user_id="u1",
                event="user_signed_up",
                properties={},
                context={},
                timestamp=at,
                received_at=at,
            )
        )
    engine.dispose()

    code, out, err = run(capsys, "users", "timeline", "u1")
    assert (code, err) == (0, "")
    assert out.splitlines() == ["2026-03-01 02:00:05 UTC  event     user_signed_up"]


# --- settings -------------------------------------------------------------------------------


def test_bad_setting_is_named_in_one_line(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIFECYCLE_API_PORT", "notanumber")
    code, out, err = run(capsys, "outbox")
    assert (code, out) == (1, "")
    line = assert_one_line_error(err)
    assert "api_port" in line.lower()
    assert "integer" in line


def test_production_refuses_the_development_write_key(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIFECYCLE_ENVIRONMENT", "production")
    code, out, err = run(capsys, "migrate")
    assert (code, out) == (1, "")
    assert "LIFECYCLE_WRITE_KEY" in assert_one_line_error(err)
    assert not Path(database_url.removeprefix("sqlite:///")).exists()  # refused before any work


def test_production_runs_once_its_secrets_are_set(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIFECYCLE_ENVIRONMENT", "production")
    monkeypatch.setenv("LIFECYCLE_WRITE_KEY", "wk-7f3a9c")
    code, _, err = run(capsys, "migrate")
    assert code == 1
    assert "LIFECYCLE_ADMIN_TOKEN" in assert_one_line_error(err)

    monkeypatch.setenv("LIFECYCLE_ADMIN_TOKEN", "at-91be02")
    code, _, err = run(capsys, "migrate")
    assert code == 1
    assert "LIFECYCLE_UNSUBSCRIBE_SECRET" in assert_one_line_error(err)

    monkeypatch.setenv("LIFECYCLE_UNSUBSCRIBE_SECRET", "us-5d20e1")
    code, out, err = run(capsys, "migrate")
    assert (code, err) == (0, "")
    assert "up to date" in out


# --- audiences ------------------------------------------------------------------------------


def _seed_users(database_url: str) -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    engine = make_engine(database_url)
    with transaction(make_session_factory(engine)) as session:
        for i, tags in enumerate([["母婴人群"], [], ["母婴人群", "vip"]]):
            session.add(
                User(id=f"u{i}", created_at=at, updated_at=at, traits={}, tags=tags, phone=None)
            )
    engine.dispose()


def test_audiences_count_and_preview_a_shipped_audience(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "migrate")[0] == 0
    _seed_users(database_url)

    code, out, _ = run(capsys, "audiences", "count", "mother_and_baby", "--now", "2026-03-02")
    assert (code, out) == (0, "2\n")

    code, out, _ = run(capsys, "audiences", "preview", "mother_and_baby", "--now", "2026-03-02")
    assert code == 0
    assert "2 member(s)" in out and "u0" in out and "u2" in out and "u1" not in out
    assert "✓ tagged 母婴人群" in out


def test_audiences_inline_rule_and_errors(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "migrate")[0] == 0
    _seed_users(database_url)
    assert run(capsys, "audiences", "count", "not: {tag: vip}")[1] == "2\n"

    code, _, err = run(capsys, "audiences", "count", "event: {name: order_placed, within: 3x}")
    assert code == 1
    line = assert_one_line_error(err)
    assert "rule.event.within" in line and "malformed duration" in line

    code, _, err = run(capsys, "audiences", "validate", "trait: {name: age, between: 3}")
    assert code == 1
    assert "rule.trait.between: unknown operator" in assert_one_line_error(err)


def test_report_prints_conversions_and_lift_as_json(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from store.models import Enrollment

    assert run(capsys, "migrate")[0] == 0
    at = datetime(2026, 3, 1, tzinfo=UTC)
    engine = make_engine(database_url)
    with transaction(make_session_factory(engine)) as session:
        for i in range(10):
            group = "holdout" if i < 4 else "treatment"
            session.add(
                Enrollment(
                    journey_id="new_user_coupon",
                    journey_version=1,
                    user_id=f"u{i}",
                    group=group,
                    workflow_id=journey_workflow_id("new_user_coupon", f"u{i}"),
                    entered_at=at,
                    exited_at=at,
                    exit_reason="converted" if i % 2 else "completed",
                    converted_at=at if i % 2 else None,
                )
            )
    engine.dispose()

    code, out, _ = run(capsys, "report", "new_user_coupon", "--json")
    assert code == 0
    (report,) = json.loads(out)
    assert report["entered"] == {"holdout": 4, "treatment": 6}
    assert report["converted"] == {"holdout": 2, "treatment": 3}
    assert report["lift"]["absolute"] == 0.0

    code, out, _ = run(capsys, "report", "new_user_coupon", "--since", "2026-04-01", "--json")
    assert json.loads(out)[0]["entered"] == {}


def test_templates_preview_and_send_test_through_the_outbox(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "templates", "preview", "new_user_welcome_sms", "--locale", "en")
    assert code == 0
    assert "sms · en" in out and "Reply STOP to opt out" in out and "SMS segment" in out

    assert run(capsys, "migrate")[0] == 0
    code, out, _ = run(capsys, "templates", "send-test", "cart_reminder_push", "--to", "tok-1")
    assert (code, out.split(":")[0]) == (0, "sent through outbox")
    code, out, _ = run(capsys, "outbox")
    assert "push  → tok-1" in out

    code, _, err = run(capsys, "templates", "preview", "no_such_template")
    assert code == 1 and "no template named 'no_such_template'" in assert_one_line_error(err)


def test_send_test_on_a_channel(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "migrate")[0] == 0
    code, out, _ = run(capsys, "send-test", "--channel", "sms", "--to", "+8613800138000")
    assert (code, out.startswith("sent through outbox")) == (0, True)
    code, _, err = run(
        capsys, "send-test", "--channel", "sms", "--template", "cart_reminder_push", "--to", "x"
    )
    assert code == 1 and "is for push, not sms" in assert_one_line_error(err)


# --- sweeps ---------------------------------------------------------------------------------


def test_sweeps_run_names_what_is_wrong(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "migrate")[0] == 0
    code, _, err = run(capsys, "sweeps", "run", "dormancy_wakeup", "--at", "yesterday")
    assert code == 1
    assert assert_one_line_error(err) == (
        "lifecycle: --at 'yesterday' is not an ISO-8601 date or instant"
    )
    code, _, err = run(capsys, "sweeps", "run", "no_such_journey")
    assert code == 1
    assert "journey 'no_such_journey' is not published" in assert_one_line_error(err)
    shipped = Path(__file__).parents[1] / "journeys" / "new_user_coupon.yaml"
    assert run(capsys, "journeys", "publish", str(shipped))[0] == 0
    code, _, err = run(capsys, "sweeps", "run", "new_user_coupon")
    assert "starts from events, not a schedule" in assert_one_line_error(err)


def test_sweeps_list_says_when_there_are_none(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "migrate")[0] == 0
    code, out, _ = run(capsys, "sweeps", "list")
    assert code == 0 and out.strip().endswith("no sweeps yet")
