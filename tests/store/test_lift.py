"""Lift and its confidence intervals, against values worked out by hand or by statsmodels."""

from __future__ import annotations

import pytest

from store.lift import lift


def test_absolute_and_relative_lift_with_95_percent_intervals():
    # 30% of 1,000 treated converted, 20% of 500 held out.
    result = lift(300, 1000, 100, 500)
    assert result.treatment_rate == pytest.approx(0.30)
    assert result.holdout_rate == pytest.approx(0.20)
    assert result.absolute == pytest.approx(0.10)
    # Newcombe's hybrid score interval, as statsmodels' confint_proportions_2indep(300,
    # 1000, 100, 500, method="newcomb") gives it: (0.053612, 0.143800). Not the Wald
    # interval's symmetric 0.10 +/- 0.045122, which is too narrow at small holdouts.
    assert result.absolute_ci == pytest.approx((0.053612, 0.143800), abs=1e-6)
    assert result.significant
    assert result.relative == pytest.approx(0.5)
    # log RR = ln 1.5; se = sqrt(.7/300 + .8/100) = 0.101653
    assert result.relative_ci == pytest.approx((0.229, 0.8307), abs=1e-3)


def test_lift_is_unknown_without_a_holdout_or_conversions():
    assert lift(10, 100, 0, 0).absolute is None
    assert lift(10, 100, 0, 0).significant is None
    no_holdout_conversions = lift(10, 100, 0, 50)
    assert no_holdout_conversions.absolute == pytest.approx(0.10)
    assert no_holdout_conversions.relative is None


def test_a_holdout_of_five_is_not_read_as_a_lift():
    # 7 of 12 treated against 1 of 5 held out: +38 points on paper, and not significant.
    small = lift(7, 12, 1, 5)
    assert small.absolute == pytest.approx(7 / 12 - 1 / 5)
    assert small.absolute_ci is not None and small.absolute_ci[0] < 0
    assert small.significant is False
