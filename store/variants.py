"""A/B variant results: per send step with variants, how the treatment entrants given each
variant converted, each rate with its Wilson interval, and each variant against the first
one the journey lists (Newcombe's interval of the difference, and how many entrants per
variant the observed difference would need to be told apart from chance).

An entrant counts for the variant the step chose for them (any ledger row of that step with
that variant: sent, skipped by the policy or held), whether or not the message reached them
(intention to treat: the choice is random, the policy's skips are not). Holdout entrants
never get a variant and are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from journeys.models import SendStep, walk
from store import stats
from store.journeys import latest_version, spec_of
from store.models import Enrollment, Message


@dataclass(frozen=True)
class VariantResult:
    variant: str
    entrants: int
    converted: int
    interval: stats.Interval  # of the rate
    # Against the step's first variant (None for the first itself):
    difference: float | None = None
    difference_interval: stats.Interval | None = None
    entrants_needed: int | None = None  # per variant, to tell the observed difference apart

    @property
    def rate(self) -> float:
        return self.converted / self.entrants

    @property
    def significant(self) -> bool | None:
        """Whether the difference's interval excludes 0 (None for the first variant)."""
        if self.difference_interval is None:
            return None
        low, high = self.difference_interval
        return low > 0 or high < 0


@dataclass(frozen=True)
class VariantTest:
    step_id: str
    variants: list[VariantResult]  # the first is what the others are compared with

    @property
    def baseline(self) -> str:
        return self.variants[0].variant

    def verdict(self) -> str:
        """One line: which variant wins, or why no winner can be named yet."""
        better = [v for v in self.variants[1:] if v.significant and (v.difference or 0) > 0]
        worse = [v for v in self.variants[1:] if v.significant and (v.difference or 0) < 0]
        if better:
            best = max(better, key=lambda v: v.rate)
            return f"{best.variant} converts better than {self.baseline} (95% interval above 0)"
        if worse and len(worse) == len(self.variants) - 1:
            return f"{self.baseline} converts better than every other variant"
        needed = [v.entrants_needed for v in self.variants[1:] if v.entrants_needed]
        if needed:
            return (
                f"no difference is significant yet; about {max(needed):,} entrants per "
                "variant would tell the observed differences apart"
            )
        return "no difference is significant yet"


def variant_tests(session: Session, *, journey_id: str) -> list[VariantTest]:
    """Every send step of ``journey_id`` whose ledger rows carry a variant, in the order the
    journey lists its steps and variants (then any no longer listed, by name)."""
    counts = session.execute(
        select(
            Message.step_id,
            Message.variant,
            func.count(distinct(Enrollment.id)),
            func.count(distinct(Enrollment.id)).filter(Enrollment.converted_at.is_not(None)),
        )
        .join(Enrollment, Enrollment.id == Message.enrollment_id)
        .where(
            Message.journey_id == journey_id,
            Message.variant.is_not(None),
            Enrollment.group == "treatment",
        )
        .group_by(Message.step_id, Message.variant)
    ).all()
    by_step: dict[str, dict[str, tuple[int, int]]] = {}
    for step_id, variant, entrants, converted in counts:
        if step_id is not None and variant is not None:
            by_step.setdefault(step_id, {})[variant] = (entrants, converted)
    order = _listed_variants(session, journey_id)
    steps = list(order)
    tests = []
    for step_id in sorted(by_step, key=lambda s: (steps.index(s) if s in steps else len(steps), s)):
        seen = by_step[step_id]
        listed = [v for v in order.get(step_id, []) if v in seen]
        names = listed + sorted(set(seen) - set(listed))
        tests.append(VariantTest(step_id, _compare([(n, *seen[n]) for n in names])))
    return tests


def _listed_variants(session: Session, journey_id: str) -> dict[str, list[str]]:
    row = latest_version(session, journey_id=journey_id)
    if row is None:
        return {}
    return {
        step.id: [v.id for v in step.variants]
        for step in walk(spec_of(row).steps)
        if isinstance(step, SendStep) and step.variants
    }


def _compare(counts: list[tuple[str, int, int]]) -> list[VariantResult]:
    first, n0, x0 = counts[0]
    results = [VariantResult(first, n0, x0, stats.wilson(x0, n0))]
    for name, n, x in counts[1:]:
        p, p0 = x / n, x0 / n0
        effect = stats.cohens_h(p, p0)
        needed = stats.entrants_for_power(effect) if effect else None
        results.append(
            VariantResult(
                name,
                n,
                x,
                stats.wilson(x, n),
                difference=p - p0,
                difference_interval=stats.newcombe(x, n, x0, n0),
                entrants_needed=None if needed is None else int(needed + 0.999),
            )
        )
    return results
