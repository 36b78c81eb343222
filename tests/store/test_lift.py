"""Lift and its confidence intervals, against values worked out by hand."""

from __future__ import annotations

import pytest

from store.lift import lift


def test_absolute_and_relative_lift_with_95_percent_intervals():
    # 30% of 1,000 treated converted, 20% of 500 held out.
    result = lift(300, 1000, 100, 500)
    assert result.treatment_rate == pytest.approx(0.30)
    assert result.holdout_rate == pytest.approx(0.20)
    assert result.absolute == pytest.approx(0.10)
    # se = sqrt(.3*.7/1000 + .2*.8/500) = 0.0230217; 1.96 se = 0.045122
    assert result.absolute_ci == pytest.approx((0.10 - 0.045122, 0.10 + 0.045122), abs=1e-5)
    assert result.relative == pytest.approx(0.5)
    # log RR = ln 1.5; se = sqrt(.7/300 + .8/100) = 0.101653
    assert result.relative_ci == pytest.approx((0.229, 0.8307), abs=1e-3)


def test_lift_is_unknown_without_a_holdout_or_conversions():
    assert lift(10, 100, 0, 0).absolute is None
    no_holdout_conversions = lift(10, 100, 0, 50)
    assert no_holdout_conversions.absolute == pytest.approx(0.10)
    assert no_holdout_conversions.relative is None
