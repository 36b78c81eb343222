"""The statistics behind the reports: intervals that hold at small and skewed samples.

Pure Python, no database. Each method is named with its source (see the README):

- :func:`wilson` — Wilson's score interval for one proportion (Wilson 1927).
- :func:`newcombe` — the difference of two proportions by Newcombe's hybrid score
  interval, method 10 of Newcombe (1998), built on two Wilson intervals. Unlike the Wald
  interval it stays inside [-1, 1] and keeps its coverage when a group is small or a rate is
  near 0.
- :func:`risk_ratio_interval` — the ratio of two proportions on the log scale (Katz et al.
  1978).
- :func:`bootstrap_difference` — the difference of two means (revenue per entrant, where a
  few large orders make the tail heavy) by the BCa bootstrap (Efron & Tibshirani 1993,
  ch. 14): each group resampled on its own, seeded, so the same data give the same interval.
- :func:`entrants_for_power` — how many entrants a two-sided test at alpha 0.05 needs to
  detect an effect with 80% power (normal approximation, as statsmodels' ``NormalIndPower``).
- :func:`sample_ratio_mismatch` — Pearson's chi-square goodness of fit of a realized split
  against the configured one.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()
ALPHA = 0.05
POWER = 0.80
SRM_ALPHA = 0.001
Z95 = _NORMAL.inv_cdf(1 - ALPHA / 2)  # 1.959964
RESAMPLES = 4000
SEED = 16
# A group with more buyers (non-zero values) than this has its resampled mean drawn from
# the normal distribution the central limit theorem gives it by then, instead of drawing
# every buyer: the tail that makes revenue need the bootstrap lives in the smaller group,
# and a large journey's report stays within a second or two.
NORMAL_ABOVE = 2_000

Interval = tuple[float, float]


def wilson(successes: int, n: int, *, z: float = Z95) -> Interval:
    """Wilson's score interval for a proportion ``successes / n`` (``n`` > 0)."""
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x2: int, n2: int, *, z: float = Z95) -> Interval:
    """Newcombe's hybrid score interval (method 10) for ``x1/n1 - x2/n2``."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z=z)
    l2, u2 = wilson(x2, n2, z=z)
    d = p1 - p2
    return (
        d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


def risk_ratio_interval(x1: int, n1: int, x2: int, n2: int, *, z: float = Z95) -> Interval:
    """The interval of ``(x1/n1) / (x2/n2)`` on the log scale; both counts must be > 0."""
    ratio = (x1 / n1) / (x2 / n2)
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
    return ratio * math.exp(-z * se), ratio * math.exp(z * se)


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def variance(values: Sequence[float]) -> float:
    """The sample variance (n - 1 in the denominator); 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    m = mean(values)
    return math.fsum((v - m) ** 2 for v in values) / (len(values) - 1)


def bootstrap_difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = 1 - ALPHA,
) -> Interval:
    """The BCa bootstrap interval of ``mean(a) - mean(b)`` (both non-empty).

    Each group is resampled with replacement on its own (``resamples`` times, from a
    ``random.Random(seed)``); the bias correction z0 comes from the share of resampled
    differences below the observed one, the acceleration from the jackknife, which for a
    difference of means has the closed form used here. Most entrants buy nothing, so a
    resample draws how many of its values are non-zero (binomially) and then only those:
    the same distribution as drawing every value, at the cost of the buyers alone; a group
    of more than :data:`NORMAL_ABOVE` buyers draws its mean from its normal approximation.
    """
    observed = mean(a) - mean(b)
    rng = random.Random(seed)  # noqa: S311 - a statistic, seeded so it repeats
    draw_a, draw_b = _resampler(a, rng), _resampler(b, rng)
    stats = sorted(draw_a() - draw_b() for _ in range(resamples))
    if stats[0] == stats[-1]:
        return observed, observed
    below = bisect_left(stats, observed)
    at_or_below = below + sum(1 for s in stats[below:] if s == observed)
    share = (below + at_or_below) / (2 * resamples)
    if share <= 0 or share >= 1:  # every resample on one side: no correction is defined
        return stats[0], stats[-1]
    z0 = _NORMAL.inv_cdf(share)
    accel = _acceleration(a, b)
    z_lo = _NORMAL.inv_cdf((1 - confidence) / 2)
    ends = []
    for z in (z_lo, -z_lo):
        shifted = z0 + z
        ends.append(_percentile(stats, _NORMAL.cdf(z0 + shifted / (1 - accel * shifted))))
    return ends[0], ends[1]


def normal_difference(a: Sequence[float], b: Sequence[float], *, z: float = Z95) -> Interval:
    """The normal (unequal variances) interval of ``mean(a) - mean(b)``."""
    d = mean(a) - mean(b)
    se = math.sqrt(variance(a) / len(a) + variance(b) / len(b))
    return d - z * se, d + z * se


def _resampler(values: Sequence[float], rng: random.Random) -> Callable[[], float]:
    """A function returning the mean of one resample of ``values``."""
    n = len(values)
    nonzero = [v for v in values if v]
    if not nonzero:
        return lambda: 0.0
    if len(nonzero) > NORMAL_ABOVE:
        m, se = mean(values), math.sqrt(variance(values) / n)
        return lambda: rng.gauss(m, se)
    # Integers (fen, counts) add exactly; anything else through fsum.
    total: Callable[[list[float]], float] = (
        sum if all(isinstance(v, int) for v in nonzero) else math.fsum
    )
    if len(nonzero) == n:
        return lambda: total(rng.choices(nonzero, k=n)) / n
    buyers = _binomial(n, len(nonzero) / n, rng)

    def draw() -> float:
        k = buyers()
        return total(rng.choices(nonzero, k=k)) / n if k else 0.0

    return draw


def _binomial(n: int, p: float, rng: random.Random) -> Callable[[], int]:
    """Draws from binomial(n, p) by inverting its CDF, tabulated once over the mean +/- 12
    standard deviations (the mass outside is below 1e-30, renormalized away)."""
    mu, sd = n * p, math.sqrt(n * p * (1 - p))
    low, high = max(0, math.floor(mu - 12 * sd) - 10), min(n, math.ceil(mu + 12 * sd) + 10)
    log_n = math.lgamma(n + 1)
    log_p, log_q = math.log(p), math.log1p(-p)
    cdf, running = [], 0.0
    for k in range(low, high + 1):
        log_pmf = log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        running += math.exp(log_pmf + k * log_p + (n - k) * log_q)
        cdf.append(running)
    last = len(cdf) - 1
    return lambda: low + min(bisect_left(cdf, rng.random() * running), last)


def _acceleration(a: Sequence[float], b: Sequence[float]) -> float:
    """BCa's acceleration from the jackknife of ``mean(a) - mean(b)``: leaving value i of
    a group out moves the difference by (v_i - mean) / (n - 1), so the jackknife influence
    values are the deviations from each group's mean."""
    third, second = 0.0, 0.0
    for values, sign in ((a, 1.0), (b, -1.0)):
        n, m = len(values), mean(values)
        third += sign * math.fsum((v - m) ** 3 for v in values) / n**3
        second += math.fsum((v - m) ** 2 for v in values) / n**2
    return third / (6 * second**1.5) if second else 0.0


def _percentile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of sorted values, interpolating linearly between ranks."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _power(shift: float, z: float) -> float:
    """Two-sided power of a z test whose statistic is centred on ``shift``."""
    return _NORMAL.cdf(shift - z) + _NORMAL.cdf(-shift - z)


def _shift_for_power(power: float = POWER, alpha: float = ALPHA) -> float:
    """The centre of the test statistic at which a two-sided test has ``power``."""
    z = _NORMAL.inv_cdf(1 - alpha / 2)
    low, high = 0.0, 40.0
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if _power(mid, z) < power else (low, mid)
    return (low + high) / 2


def entrants_for_power(
    effect: float,
    *,
    var1: float = 1.0,
    var2: float = 1.0,
    ratio: float = 1.0,
    power: float = POWER,
    alpha: float = ALPHA,
) -> float | None:
    """Entrants group 1 needs (group 2 having ``ratio`` times as many) for a two-sided test
    at ``alpha`` to detect ``effect`` with ``power``, the variance of one entrant's value
    being ``var1`` and ``var2``. None when there is no effect to detect.

    With unit variances ``effect`` is a standardized effect size (Cohen's h for two
    proportions: see :func:`cohens_h`), as statsmodels' ``NormalIndPower`` takes it.
    """
    if effect == 0 or ratio <= 0:
        return None
    spread = var1 + var2 / ratio
    if spread <= 0:
        return None
    return (_shift_for_power(power, alpha) / abs(effect)) ** 2 * spread


def cohens_h(p1: float, p2: float) -> float:
    """Cohen's effect size for two proportions: the difference of their arcsine roots."""
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))


@dataclass(frozen=True)
class SampleRatio:
    """Did the split come out as configured? Pearson's chi-square, one degree of freedom."""

    holdout: int  # units (users) in the holdout
    total: int
    expected_share: float  # the configured holdout share, 0-1
    chi2: float
    p_value: float

    @property
    def realized_share(self) -> float:
        return self.holdout / self.total if self.total else 0.0

    @property
    def mismatch(self) -> bool:
        """True when a split this far from the configured one is too unlikely (p < 0.001)
        to be chance: assignment or logging is broken, and the lift cannot be trusted."""
        return self.p_value < SRM_ALPHA


def sample_ratio_mismatch(*, holdout: int, total: int, expected_share: float) -> SampleRatio:
    """Chi-square goodness of fit of ``holdout`` of ``total`` against ``expected_share``
    (strictly between 0 and 1)."""
    expected = (total * (1 - expected_share), total * expected_share)
    observed = (total - holdout, holdout)
    chi2 = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    return SampleRatio(holdout, total, expected_share, chi2, math.erfc(math.sqrt(chi2 / 2)))
