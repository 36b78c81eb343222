"""The report's statistics against reference implementations (statsmodels, scipy) on fixed
data: the same numbers a statistician would get from the standard tools."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")
scipy_stats = pytest.importorskip("scipy.stats")
proportion = pytest.importorskip("statsmodels.stats.proportion")
power = pytest.importorskip("statsmodels.stats.power")

from store import stats  # noqa: E402

# (converted, entrants) treatment then holdout: small holdouts, zero and full rates, large.
PAIRS = [(7, 12, 1, 5), (0, 20, 3, 4), (30, 100, 10, 50), (5, 5, 0, 3), (1210, 9000, 98, 1000)]


@pytest.mark.parametrize(("x", "n"), [(0, 5), (1, 5), (3, 17), (17, 17), (98, 1000)])
def test_wilson_matches_statsmodels(x, n):
    expected = proportion.proportion_confint(x, n, alpha=0.05, method="wilson")
    assert stats.wilson(x, n) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), PAIRS)
def test_newcombe_matches_statsmodels(x1, n1, x2, n2):
    expected = proportion.confint_proportions_2indep(x1, n1, x2, n2, method="newcomb")
    assert stats.newcombe(x1, n1, x2, n2) == pytest.approx(expected, abs=1e-12)


def test_newcombe_is_honest_where_the_wald_interval_claims_certainty():
    # All 5 treated converted, none of 3 held out: Wald's standard error is 0, its
    # interval the single point +100 points. Newcombe's says how little 8 users show.
    low, high = stats.newcombe(5, 5, 0, 3)
    assert high == pytest.approx(1.0)
    assert 0 < low < 0.5


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [(30, 100, 10, 50), (1210, 9000, 98, 1000)])
def test_risk_ratio_matches_statsmodels_log_method(x1, n1, x2, n2):
    expected = proportion.confint_proportions_2indep(x1, n1, x2, n2, compare="ratio", method="log")
    assert stats.risk_ratio_interval(x1, n1, x2, n2) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("ratio", [1.0, 0.25, 1 / 9])
@pytest.mark.parametrize(("p1", "p2"), [(0.30, 0.20), (0.135, 0.098), (0.05, 0.04)])
def test_sample_size_for_two_proportions_matches_normal_ind_power(p1, p2, ratio):
    h = stats.cohens_h(p1, p2)
    assert h == pytest.approx(proportion.proportion_effectsize(p1, p2))
    expected = power.NormalIndPower().solve_power(
        effect_size=h, alpha=0.05, power=0.8, ratio=ratio, alternative="two-sided"
    )
    assert stats.entrants_for_power(h, ratio=ratio) == pytest.approx(expected, rel=1e-6)


def test_sample_size_for_a_difference_of_means_matches_normal_ind_power():
    # Equal variances: the standardized effect is the difference over the deviation.
    diff, sd = 1250.0, 9000.0
    expected = power.NormalIndPower().solve_power(
        effect_size=diff / sd, alpha=0.05, power=0.8, ratio=0.1
    )
    needed = stats.entrants_for_power(diff, var1=sd**2, var2=sd**2, ratio=0.1)
    assert needed == pytest.approx(expected, rel=1e-6)
    assert stats.entrants_for_power(0.0) is None


@pytest.mark.parametrize(
    ("holdout", "total", "share"), [(80, 1000, 0.10), (1, 5, 0.10), (4_800, 100_000, 0.05)]
)
def test_sample_ratio_mismatch_matches_scipy_chisquare(holdout, total, share):
    result = stats.sample_ratio_mismatch(holdout=holdout, total=total, expected_share=share)
    expected = scipy_stats.chisquare(
        [total - holdout, holdout], [total * (1 - share), total * share]
    )
    assert result.chi2 == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_a_broken_split_is_flagged_and_a_fair_one_is_not():
    # 10% configured: 10.2% of 10,000 is chance, 8% of 10,000 is not (p ~ 3e-11).
    assert not stats.sample_ratio_mismatch(holdout=1020, total=10_000, expected_share=0.1).mismatch
    broken = stats.sample_ratio_mismatch(holdout=800, total=10_000, expected_share=0.1)
    assert broken.mismatch and broken.p_value < 1e-9


def _revenue(seed: int, n: int, buyers: float) -> list[int]:
    """Revenue per entrant in fen: most buy nothing, buyers' orders are lognormal (a few
    large ones make the tail heavy)."""
    rng = np.random.default_rng(seed)
    amounts = rng.lognormal(9, 1.2, n).astype(int)
    return [int(a) if u < buyers else 0 for a, u in zip(amounts, rng.random(n), strict=True)]


@pytest.mark.parametrize(("n_t", "n_h"), [(300, 60), (900, 100)])
def test_bootstrap_interval_matches_scipy_bca(n_t, n_h):
    treatment, holdout = _revenue(1, n_t, 0.2), _revenue(2, n_h, 0.15)

    def diff(a, b, axis):
        return a.mean(axis=axis) - b.mean(axis=axis)

    runs = [
        scipy_stats.bootstrap(
            (np.array(treatment, float), np.array(holdout, float)),
            diff,
            method="BCa",
            n_resamples=20_000,
            rng=np.random.default_rng(seed),
        ).confidence_interval
        for seed in range(4)
    ]
    low, high = np.mean([r.low for r in runs]), np.mean([r.high for r in runs])
    ours = stats.bootstrap_difference(treatment, holdout, resamples=20_000)
    # Monte Carlo estimates of one interval (the reference averaged over four seeds): the
    # ends agree within 5% of its width; the tail end varies most between seeds.
    width = high - low
    assert ours[0] == pytest.approx(low, abs=0.05 * width)
    assert ours[1] == pytest.approx(high, abs=0.05 * width)
    # Skewed data: BCa's interval is not the symmetric normal one.
    normal = stats.normal_difference(treatment, holdout)
    assert abs((ours[0] + ours[1]) / 2 - (normal[0] + normal[1]) / 2) > 0.02 * width


def test_bootstrap_is_deterministic_and_exact_on_constant_data():
    treatment, holdout = _revenue(3, 200, 0.3), _revenue(4, 40, 0.3)
    assert stats.bootstrap_difference(treatment, holdout) == stats.bootstrap_difference(
        treatment, holdout
    )
    assert stats.bootstrap_difference([0] * 50, [0] * 5) == (0.0, 0.0)
    assert stats.bootstrap_difference([100] * 50, [40] * 5) == (60.0, 60.0)


def test_a_group_of_thousands_of_buyers_still_matches_scipy_bca_and_stays_fast():
    import time

    # 2,400 buyers treated (their mean drawn from its normal approximation) against 300
    # held out (resampled): scipy resamples every value of both.
    treatment, holdout = _revenue(5, 12_000, 0.2), _revenue(6, 1_500, 0.2)
    started = time.perf_counter()
    ours = stats.bootstrap_difference(treatment, holdout)
    assert time.perf_counter() - started < 5

    def diff(a, b, axis):
        return a.mean(axis=axis) - b.mean(axis=axis)

    reference = scipy_stats.bootstrap(
        (np.array(treatment, float), np.array(holdout, float)),
        diff,
        method="BCa",
        n_resamples=4_000,
        batch=500,
        rng=np.random.default_rng(0),
    ).confidence_interval
    width = reference.high - reference.low
    assert ours[0] == pytest.approx(reference.low, abs=0.05 * width)
    assert ours[1] == pytest.approx(reference.high, abs=0.05 * width)
    # The holdout's tail: the normal interval would be far off on the low side.
    assert stats.normal_difference(treatment, holdout)[0] > ours[0] + 0.15 * width
