"""Lift of a treatment group over a holdout, with 95% confidence intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959964


@dataclass(frozen=True)
class Lift:
    treatment_rate: float | None
    holdout_rate: float | None
    absolute: float | None  # percentage points, as a fraction (0.05 = +5 pp)
    absolute_ci: tuple[float, float] | None
    relative: float | None  # (treatment / holdout) - 1
    relative_ci: tuple[float, float] | None


def lift(converted_t: int, n_t: int, converted_h: int, n_h: int) -> Lift:
    """Absolute lift (difference of proportions, Wald interval) and relative lift (risk
    ratio, log-scale interval). None where a group is empty or a rate is zero."""
    p_t = converted_t / n_t if n_t else None
    p_h = converted_h / n_h if n_h else None
    if p_t is None or p_h is None:
        return Lift(p_t, p_h, None, None, None, None)
    diff = p_t - p_h
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_h * (1 - p_h) / n_h)
    abs_ci = (diff - Z95 * se, diff + Z95 * se)
    if p_t == 0 or p_h == 0:
        return Lift(p_t, p_h, diff, abs_ci, None, None)
    ratio = p_t / p_h
    se_log = math.sqrt((1 - p_t) / (n_t * p_t) + (1 - p_h) / (n_h * p_h))
    rel_ci = (
        math.exp(math.log(ratio) - Z95 * se_log) - 1,
        math.exp(math.log(ratio) + Z95 * se_log) - 1,
    )
    return Lift(p_t, p_h, diff, abs_ci, ratio - 1, rel_ci)
