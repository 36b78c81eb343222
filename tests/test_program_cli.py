"""``lifecycle kpi`` ends with the program's lift against the global control group, or
says how to get one."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cli import main
from journey_support import add_user, store_event
from store.program import in_global_control

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 2, 10, tzinfo=SHANGHAI)
UNTIL = "2026-05-31T00:00+08:00"


@pytest.fixture
def population(db, monkeypatch: pytest.MonkeyPatch, tmp_path):
    """40 users before the window; every fourth orders once in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", db.url)
    users = [f"u{i}" for i in range(40)]
    for i, user in enumerate(users):
        add_user(db.factory, user, START - timedelta(days=1))
        if i % 4 == 0:
            store_event(
                db.factory,
                user,
                "order_placed",
                START + timedelta(days=10),
                properties={"total_fen": 5_000},
            )
    return users


def kpi(capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    code = main(["kpi", "--since", "2026-03-02", "--until", UNTIL, *flags])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_the_program_against_its_control(population, capsys, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_GLOBAL_CONTROL_PERCENT", "50")
    control = [u for u in population if in_global_control(u, percent=50, salt="global-control")]
    program = json.loads(kpi(capsys, "--json"))["program"]
    money = program["money"]
    assert money["holdout"]["entrants"] == len(control)
    assert money["treatment"]["entrants"] == len(population) - len(control)
    bought = {u for i, u in enumerate(population) if i % 4 == 0}
    assert money["holdout"]["converted"] == len(bought & set(control))
    assert program["global_control_percent"] == 50
    assert program["sample_ratio"]["holdout"] == len(control)

    out = kpi(capsys)
    assert "Program lift: users exposed to marketing against the global control group" in out
    assert "(50% of users, sent no marketing message)" in out
    assert f"{len(control)} in control" in out
    assert "conversion (points)" in out and "30-day retention of signups" in out


def test_without_a_control_group_it_says_how_to_get_one(population, capsys, monkeypatch):
    monkeypatch.delenv("LIFECYCLE_GLOBAL_CONTROL_PERCENT", raising=False)
    assert json.loads(kpi(capsys, "--json"))["program"] is None
    assert "no global control group (LIFECYCLE_GLOBAL_CONTROL_PERCENT is 0)" in kpi(capsys)


def test_a_control_group_over_half_is_refused(population, capsys, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_GLOBAL_CONTROL_PERCENT", "60")
    code = main(["kpi"])
    err = capsys.readouterr().err
    assert code != 0
    assert "LIFECYCLE_GLOBAL_CONTROL_PERCENT" in err
