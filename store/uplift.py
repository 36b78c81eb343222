"""Treatment against holdout, per entrant: each difference with its 95% interval, and what
the sample cannot show yet.

The differences are per entrant (treatment minus holdout) scaled to the treatment's
entrants: incremental orders, GMV and margin (GMV times the margin rate), each with a 95%
interval (:mod:`store.stats`: Newcombe for the conversion rate, the BCa bootstrap for orders
and GMV per entrant, given :data:`MIN_BUYERS` in each group). The spend is the treatment's
coupon cost plus its message cost, and

    ROI = (incremental margin - spend) / spend
    cost per incremental order = spend / incremental orders

Spend is counted, not estimated, so their intervals are those of incremental margin and
orders carried through the formulas. An ROI is significant when its interval excludes 0 (the
journey surely pays, or surely loses); a cost per incremental order when the incremental
orders are. When a difference is not significant, :func:`store.stats.entrants_for_power`
says about how many more entrants (at the current split) would detect the observed effect;
for ROI, the observed GMV difference against the one at which ROI is 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from store import stats

# The fewest non-zero values (buyers) a group needs for a bootstrap interval of its mean:
# the usual rule of thumb for a binomial count (n p >= 5).
MIN_BUYERS = 5


@dataclass
class Entrant:
    """One enrollment's outcome in its window."""

    group: str
    user_id: str
    converted: bool
    orders: int = 0
    gmv_fen: int = 0
    coupon_fen: int = 0
    message_fen: float = 0.0


@dataclass(frozen=True)
class GroupMoney:
    """One group's totals."""

    entrants: int
    converted: int
    orders: int
    gmv_fen: int
    coupon_fen: int
    message_fen: float

    def per_entrant(self, total: float) -> float | None:
        return total / self.entrants if self.entrants else None


@dataclass(frozen=True)
class Estimate:
    """A difference with its 95% interval and what the sample can say about it.

    ``more_treatment`` / ``more_holdout``: when the interval covers 0, about how many more
    entrants each group needs (at the current split) for a two-sided test at alpha 0.05 to
    detect the observed effect with 80% power; None when significant or nothing observed.
    ``high`` None is an unbounded interval (a cost per order when the orders may be 0).
    """

    value: float | None
    low: float | None = None
    high: float | None = None
    more_treatment: int | None = None
    more_holdout: int | None = None
    # Set where the interval is not tested against 0: a cost per incremental order is
    # significant when the incremental orders are.
    decided: bool | None = None
    # Why there is no interval where a comparison was made (too few buyers to resample).
    unsure: str | None = None

    @property
    def significant(self) -> bool | None:
        """True when the interval excludes 0; None without an interval."""
        if self.decided is not None:
            return self.decided
        if self.low is None and self.high is None:
            return None
        return (self.low is not None and self.low > 0) or (self.high is not None and self.high < 0)

    def scaled(self, factor: float, shift: float = 0.0) -> Estimate:
        """This estimate carried through ``x * factor + shift`` (``factor`` > 0)."""

        def f(x: float | None) -> float | None:
            return None if x is None else x * factor + shift

        return replace(self, value=f(self.value), low=f(self.low), high=f(self.high))

    def needing(self, more: tuple[int | None, int | None]) -> Estimate:
        """This estimate, with the entrants still needed when it is not significant."""
        if self.significant is not False:
            return self
        return replace(self, more_treatment=more[0], more_holdout=more[1])

    def note(self) -> str:
        """What a marketer should read into it."""
        if self.value is None or self.significant is None:
            return "no holdout to compare with"
        if self.significant:
            return "significant (95% interval excludes 0)"
        why = f" ({self.unsure})" if self.unsure else ""
        if self.more_treatment is None or self.more_holdout is None:
            return f"not significant{why}" if why else "not significant: no difference observed"
        more = self.more_treatment + self.more_holdout
        return (
            f"not significant yet{why}; about {more:,} more entrants ({self.more_holdout:,} of "
            "them held out) would detect the observed effect"
        )


@dataclass(frozen=True)
class Money:
    """Treatment against holdout for one set of entrants (a journey, a step, a variant)."""

    label: str
    treatment: GroupMoney
    holdout: GroupMoney
    conversion: Estimate  # difference of conversion rates
    orders_per_entrant: Estimate
    gmv_per_entrant_fen: Estimate
    incremental_orders: Estimate
    incremental_gmv_fen: Estimate
    incremental_margin_fen: Estimate
    spend_fen: float  # the treatment's coupon cost + message cost
    cost_per_incremental_order_fen: Estimate
    roi: Estimate

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in data:
            if isinstance(getattr(self, name), Estimate):
                estimate = getattr(self, name)
                data[name] |= {"significant": estimate.significant, "note": estimate.note()}
        return data


def compare(
    label: str,
    entrants: Sequence[Entrant],
    *,
    margin_rate: float,
    spend_fen: float | None = None,
) -> Money:
    """Treatment against holdout among ``entrants``, margin being ``margin_rate`` of GMV;
    ``spend_fen`` overrides the spend (a step's own message cost), which is otherwise the
    treatment's coupon and message cost."""
    t = [e for e in entrants if e.group == "treatment"]
    h = [e for e in entrants if e.group == "holdout"]
    tg, hg = _totals(t), _totals(h)
    spend = tg.coupon_fen + tg.message_fen if spend_fen is None else spend_fen
    conversion = _conversion(tg, hg)
    orders = _mean_difference([e.orders for e in t], [e.orders for e in h])
    gmv = _mean_difference([e.gmv_fen for e in t], [e.gmv_fen for e in h])
    n = len(t)
    inc_orders, inc_gmv = orders.scaled(n), gmv.scaled(n)
    margin = inc_gmv.scaled(margin_rate)
    roi = Estimate(None)
    if spend > 0 and gmv.value is not None:
        # ROI is 0 where the margin pays the spend: GMV per entrant higher by this much.
        even = spend / (margin_rate * n) if margin_rate else math.inf
        more = _more_for(gmv.value - even, [e.gmv_fen for e in t], [e.gmv_fen for e in h])
        if gmv.unsure:  # and at least what an interval of GMV needs
            more = _at_least(more, (gmv.more_treatment, gmv.more_holdout))
        roi = margin.scaled(1 / spend, -1.0).needing(more)
    return Money(
        label=label,
        treatment=tg,
        holdout=hg,
        conversion=conversion,
        orders_per_entrant=orders,
        gmv_per_entrant_fen=gmv,
        incremental_orders=inc_orders,
        incremental_gmv_fen=inc_gmv,
        incremental_margin_fen=margin,
        spend_fen=spend,
        cost_per_incremental_order_fen=_cost_per(spend, inc_orders),
        roi=roi,
    )


def _totals(group: Sequence[Entrant]) -> GroupMoney:
    return GroupMoney(
        entrants=len(group),
        converted=sum(e.converted for e in group),
        orders=sum(e.orders for e in group),
        gmv_fen=sum(e.gmv_fen for e in group),
        coupon_fen=sum(e.coupon_fen for e in group),
        message_fen=math.fsum(e.message_fen for e in group),
    )


def _more(needed: float | None, n_t: int, n_h: int) -> tuple[int | None, int | None]:
    """More entrants per group to reach ``needed`` in the treatment at the current split."""
    if needed is None:
        return None, None
    ratio = n_h / n_t
    return max(1, math.ceil(needed - n_t)), max(1, math.ceil(needed * ratio - n_h))


def _at_least(
    a: tuple[int | None, int | None], b: tuple[int | None, int | None]
) -> tuple[int | None, int | None]:
    """The larger need of each group; unknown (None) when either is."""
    (a0, a1), (b0, b1) = a, b
    if a0 is None or a1 is None or b0 is None or b1 is None:
        return None, None
    return max(a0, b0), max(a1, b1)


def _conversion(t: GroupMoney, h: GroupMoney) -> Estimate:
    if not t.entrants or not h.entrants:
        return Estimate(None)
    p_t, p_h = t.converted / t.entrants, h.converted / h.entrants
    low, high = stats.newcombe(t.converted, t.entrants, h.converted, h.entrants)
    needed = stats.entrants_for_power(stats.cohens_h(p_t, p_h), ratio=h.entrants / t.entrants)
    return Estimate(p_t - p_h, low, high).needing(_more(needed, t.entrants, h.entrants))


def _mean_difference(t: Sequence[float], h: Sequence[float]) -> Estimate:
    """The difference of means per entrant with its BCa interval and, when it covers 0,
    the entrants a normal test would need to detect it.

    With fewer than :data:`MIN_BUYERS` non-zero values in a group the bootstrap cannot see
    how that group's mean varies (a holdout of 2 who bought nothing resamples to 0 every
    time), so no interval is given and the difference is not significant: the entrants
    still needed are then at least those for :data:`MIN_BUYERS` buyers in each group.
    """
    if not t or not h:
        return Estimate(None)
    diff = stats.mean(t) - stats.mean(h)
    buyers = [sum(1 for v in group if v) for group in (t, h)]
    if min(buyers) < MIN_BUYERS:
        more = _more_for(diff, t, h)
        if 0 in buyers:
            more = (None, None)
        else:
            more = _at_least(
                more,
                (
                    math.ceil(MIN_BUYERS * len(t) / buyers[0]) - len(t),
                    math.ceil(MIN_BUYERS * len(h) / buyers[1]) - len(h),
                ),
            )
        unsure = (
            f"{buyers[0]} buyers treated, {buyers[1]} held out: "
            f"an interval needs {MIN_BUYERS} in each group"
        )
        return Estimate(diff, decided=False, unsure=unsure).needing(more)
    low, high = stats.bootstrap_difference(t, h)
    return Estimate(diff, low, high).needing(_more_for(diff, t, h))


def _more_for(
    effect: float, t: Sequence[float], h: Sequence[float]
) -> tuple[int | None, int | None]:
    """More entrants per group for a normal test to tell ``effect`` (a difference of the
    per-entrant means) from none, with the variances observed."""
    if not math.isfinite(effect):
        return None, None
    needed = stats.entrants_for_power(
        effect, var1=stats.variance(t), var2=stats.variance(h), ratio=len(h) / len(t)
    )
    return _more(needed, len(t), len(h))


def _cost_per(spend: float, orders: Estimate) -> Estimate:
    """``spend / incremental orders``: decreasing in the orders, so the interval's ends
    swap; unbounded above when the orders' interval reaches 0."""
    if orders.value is None or orders.value <= 0 or spend <= 0:
        return Estimate(None)
    low = spend / orders.high if orders.high is not None and orders.high > 0 else None
    high = spend / orders.low if orders.low is not None and orders.low > 0 else None
    return Estimate(
        spend / orders.value,
        low,
        high,
        orders.more_treatment,
        orders.more_holdout,
        decided=orders.significant,
        unsure=orders.unsure,
    )
