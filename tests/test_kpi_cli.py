"""``lifecycle kpi`` on the terminal and as JSON, against a real database."""

from __future__ import annotations

import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cli import main
from journey_support import add_user, store_event

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def seeded(db, monkeypatch: pytest.MonkeyPatch, tmp_path):
    """Week of 18 May 2026 (Shanghai): four visitors, one of whom ordered ¥88.50; one
    signup who ordered the next day."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", db.url)
    monkeypatch.delenv("LIFECYCLE_KPI_TARGETS", raising=False)
    add_user(db.factory, "u1", datetime(2026, 5, 18, 10, tzinfo=SHANGHAI))
    store_event(db.factory, "u1", "user_signed_up", datetime(2026, 5, 18, 10, tzinfo=SHANGHAI))
    for user in ("u1", "u2", "u3", "u4"):
        store_event(db.factory, user, "session_started", datetime(2026, 5, 19, tzinfo=SHANGHAI))
    store_event(
        db.factory,
        "u1",
        "order_placed",
        datetime(2026, 5, 19, 12, tzinfo=SHANGHAI),
        properties={"order_id": "o1", "total": 88.5},
    )
    return db


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_kpi_json(seeded, capsys):
    code, out, err = run(
        capsys, "kpi", "--since", "2026-05-18", "--until", "2026-05-25T08:00+08:00", "--json"
    )
    assert code == 0, err
    found = json.loads(out)
    assert found["timezone"] == "Asia/Shanghai"
    kpis = {k["key"]: k for k in found["kpis"]}
    conversion = kpis["order_conversion"]
    assert (conversion["latest"]["x"], conversion["latest"]["n"]) == (1, 4)
    assert conversion["latest"]["value"] == 0.25
    low, high = conversion["latest"]["interval"]
    assert low < 0.25 < high
    assert conversion["target"] == 0.035 and conversion["on_target"] is True
    assert conversion["latest"]["start"] == "2026-05-17T16:00:00+00:00"  # Monday in Shanghai
    assert kpis["gmv"]["latest"]["value"] == 8850
    assert kpis["first_order_7d"]["points"] == []  # the signup week's 7 days are not over


def test_kpi_targets_from_settings(seeded, capsys, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_KPI_TARGETS", '{"order_conversion": 0.5, "gmv": 5000}')
    code, out, _ = run(
        capsys, "kpi", "--since", "2026-05-18", "--until", "2026-05-25T08:00+08:00", "--json"
    )
    kpis = {k["key"]: k for k in json.loads(out)["kpis"]}
    assert (kpis["order_conversion"]["target"], kpis["order_conversion"]["on_target"]) == (
        0.5,
        False,
    )
    assert (kpis["gmv"]["target"], kpis["gmv"]["on_target"]) == (5000, True)
    assert kpis["retention_30d"]["target"] == 0.30  # the plan's, where the setting is silent


def test_kpi_on_the_terminal(seeded, capsys):
    code, out, err = run(
        capsys, "kpi", "--since", "2026-05-18", "--until", "2026-05-25T08:00+08:00"
    )
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    conversion = lines["order_conversion"]
    assert re.search(r"2026-05-18\s+25\.0%\s+\[4\.6%, 69\.9%\]\s+1 of 4\s+3\.5%\s+met", conversion)
    assert re.search(r"¥88\.50\s+1 order\s", lines["gmv"])
    assert "none yet" in lines["first_order_7d"]


def test_kpi_refuses_a_window_backwards(seeded, capsys):
    code, _, err = run(capsys, "kpi", "--since", "2026-06-01", "--until", "2026-05-01")
    assert code == 1
    assert err.strip() == "lifecycle: --since must come before --until"
