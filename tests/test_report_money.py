"""``lifecycle report`` shows each journey's money, honest about what is not significant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Database, make_database
from money_support import seed
from set_aside_support import JOURNEY, USERS
from set_aside_support import seed as set_aside_seed

from cli import main


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    """The fixed population in a SQLite file the CLI reads, priced by the environment."""
    database = next(make_database("sqlite", tmp_path, False))
    seed(database)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", database.url)
    for name, value in (
        ("SMS_COST_FEN_PER_SEGMENT", "5"),
        ("SMS_COST_FEN_BY_COUNTRY", '{"+1": 60}'),
        ("EMAIL_COST_FEN", "2"),
        ("PUSH_COST_FEN", "1"),
        ("MARGIN_RATE", "0.3"),
    ):
        monkeypatch.setenv(f"LIFECYCLE_{name}", value)
    return database


def test_report_json_has_the_money_with_intervals_and_notes(
    seeded: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "new_user_coupon", "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    money = report["money"]["journey"]
    assert money["treatment"]["orders"] == 3 and money["holdout"]["orders"] == 1
    assert money["treatment"]["gmv_fen"] == 45000
    assert money["spend_fen"] == pytest.approx(2093)
    roi = money["roi"]
    assert roi["value"] == pytest.approx((0.3 * 36000 - 2093) / 2093)
    assert roi["low"] is None and roi["high"] is None  # 2 and 1 buyers: no interval
    assert roi["significant"] is False
    assert roi["note"].startswith("not significant yet (2 buyers treated, 1 held out")
    conversion = money["conversion"]
    assert conversion["low"] < 0 < conversion["high"]
    assert conversion["note"].startswith("not significant yet; about ")
    assert report["money"]["costs"]["margin_rate"] == 0.3
    assert report["lift"]["absolute_ci"][0] < 0  # Newcombe: 8 points on 10 users is not a lift


def test_report_on_the_terminal_says_not_significant_yet(
    seeded: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "new_user_coupon"]) == 0
    out = capsys.readouterr().out
    assert "— not significant" in out  # the lift line
    roi = next(line for line in out.splitlines() if line.startswith("new_user_coupon: ROI"))
    assert "+416.0%" in roi and "on ¥20.93 spent" in roi
    assert "not significant yet (2 buyers treated, 1 held out" in roi
    assert "would detect the observed effect" in roi
    assert "split: 4 of 10 users held out (40.0%) against 10% configured" in out
    assert "SAMPLE RATIO MISMATCH" not in out


def test_report_sets_the_global_control_aside_from_both_arms(
    db: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    population = set_aside_seed(db)
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", db.url)
    arms = {"treatment": len(population.treatment), "holdout": len(population.holdout)}

    assert main(["report", JOURNEY, "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["entered"] == arms
    assert report["set_aside"] == report["money"]["set_aside"] == len(population.control)
    money = report["money"]["journey"]
    assert (money["treatment"]["entrants"], money["holdout"]["entrants"]) == tuple(arms.values())
    assert report["money"]["sample_ratio"]["total"] == sum(arms.values())
    assert report["money"]["sample_ratio"]["mismatch"] is False

    assert main(["report", JOURNEY]) == 0
    out = capsys.readouterr().out
    assert f"global control: {len(population.control)} set aside" in out
    assert f"entered {len(USERS)} · exits" in out
    assert "SAMPLE RATIO MISMATCH" not in out
