"""The behaviour model a marketer can override: defaults, and one clear line per mistake."""

from __future__ import annotations

import pytest

from cli import main
from simulate.behaviour import Behaviour, BehaviourError, load_behaviour, parse_behaviour


def test_a_file_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "behaviour.yaml"
    path.write_text("daily:\n  order: 0.2\nlift:\n  factor: 5\n")

    model = load_behaviour(path)

    assert model.daily.order == 0.2 and model.lift.factor == 5
    assert model.daily.visit == Behaviour().daily.visit
    assert model.lift.days == Behaviour().lift.days
    assert model.chance(0.3, lifted=True) == 1.0  # a chance never exceeds certainty
    assert model.chance(0.1, lifted=False) == 0.1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "daily:\n  order: 1.5\n",
            "b.yaml:2: daily.order: Input should be less than or equal to 1",
        ),
        ("daily:\n  oder: 0.1\n", "b.yaml:2: daily.oder: unknown field"),
        (
            "lift:\n  factor: 0.5\n",
            "b.yaml:2: lift.factor: Input should be greater than or equal to 1",
        ),
        ("lift:\n  days: soon\n", "b.yaml:2: lift.days: Input should be a valid number"),
        (
            "population:\n  new: 0.8\n  dormant: 0.5\n",
            "b.yaml:3: population.dormant: new + dormant",
        ),
        ("daily: [0.1]\n", "b.yaml:1: daily: Input should be a valid dictionary"),
        ("daily:\n  visit: 0.1\n   order: 2\n", "b.yaml:3: not valid YAML"),
        ("- visit\n", "b.yaml:1: a behaviour file is a mapping"),
    ],
)
def test_mistakes_name_the_file_line_and_field(text, expected):
    with pytest.raises(BehaviourError) as err:
        parse_behaviour(text, file="b.yaml")

    assert str(err.value).startswith(expected), str(err.value)
    assert "\n" not in str(err.value)


def test_the_command_refuses_a_bad_behaviour_file_in_one_line(tmp_path, capsys):
    bad = tmp_path / "behaviour.yaml"
    bad.write_text("lift:\n  factor: -2\n")

    code = main(["simulate", "journeys/new_user_coupon.yaml", "--behaviour", str(bad)])

    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err == f"lifecycle: {bad}:2: lift.factor: Input should be greater than or equal to 1"


def test_the_command_refuses_a_missing_behaviour_file(tmp_path, capsys):
    code = main(["simulate", "--behaviour", str(tmp_path / "nope.yaml"), "--users", "5"])

    assert code == 1
    assert "nope.yaml: cannot read" in capsys.readouterr().err
