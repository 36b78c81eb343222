"""Lift of a treatment group over a holdout, with 95% confidence intervals."""

from __future__ import annotations

from dataclasses import dataclass

from store.stats import newcombe, risk_ratio_interval


@dataclass(frozen=True)
class Lift:
    treatment_rate: float | None
    holdout_rate: float | None
    absolute: float | None  # percentage points, as a fraction (0.05 = +5 pp)
    absolute_ci: tuple[float, float] | None
    relative: float | None  # (treatment / holdout) - 1
    relative_ci: tuple[float, float] | None

    @property
    def significant(self) -> bool | None:
        """True when the absolute lift's interval excludes 0; None without a holdout."""
        if self.absolute_ci is None:
            return None
        return self.absolute_ci[0] > 0 or self.absolute_ci[1] < 0


def lift(converted_t: int, n_t: int, converted_h: int, n_h: int) -> Lift:
    """Absolute lift (difference of proportions, Newcombe's hybrid score interval) and
    relative lift (risk ratio, log-scale interval). None where a group is empty or a rate
    is zero."""
    p_t = converted_t / n_t if n_t else None
    p_h = converted_h / n_h if n_h else None
    if p_t is None or p_h is None:
        return Lift(p_t, p_h, None, None, None, None)
    diff = p_t - p_h
    abs_ci = newcombe(converted_t, n_t, converted_h, n_h)
    if p_t == 0 or p_h == 0:
        return Lift(p_t, p_h, diff, abs_ci, None, None)
    low, high = risk_ratio_interval(converted_t, n_t, converted_h, n_h)
    return Lift(p_t, p_h, diff, abs_ci, p_t / p_h - 1, (low - 1, high - 1))
