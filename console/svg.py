"""SVG drawn on the server: a journey's steps as a diagram, and conversions over time.

Every piece of text goes through :func:`markupsafe.escape`; the result is :class:`Markup`
that templates insert as is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import assert_never

from markupsafe import Markup, escape

from audiences.describe import describe
from audiences.rules import AudienceError, parse_rule
from console.queries import ConversionPoint, JourneyTotals, StepCounts
from journeys.durations import format_duration
from journeys.models import (
    AudienceCondition,
    BranchStep,
    ExitStep,
    IssueCouponStep,
    Journey,
    SendStep,
    Step,
    WaitForStep,
    WaitStep,
    WaitUntilStep,
)

NODE_W, NODE_H = 280, 62
V_GAP, H_GAP, MARGIN = 40, 28, 20
MAX_CHARS = 42
OPS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}


def _clip(text: str, limit: int = MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(x: float, y: float, text: str, cls: str, anchor: str = "middle") -> str:
    clipped = _clip(text)
    # A clipped line keeps its whole text as a tooltip.
    full = f"<title>{escape(text)}</title>" if clipped != text else ""
    return (
        f'<text x="{x:g}" y="{y:g}" class="{cls}" text-anchor="{anchor}">'
        f"{escape(clipped)}{full}</text>"
    )


@dataclass
class _Canvas:
    counts: dict[str, StepCounts]
    parts: list[str] = field(default_factory=list)

    def node(self, cx: float, y: float, kind: str, lines: Sequence[str], step: str = "") -> None:
        x = cx - NODE_W / 2
        attr = f' data-step="{escape(step)}"' if step else ""
        self.parts.append(f'<g class="node node-{kind}"{attr}>')
        self.parts.append(
            f'<rect x="{x:g}" y="{y:g}" width="{NODE_W}" height="{NODE_H}" rx="8" ry="8"/>'
        )
        for i, line in enumerate(lines[:3]):
            self.parts.append(_text(cx, y + 18 + i * 18, line, "title" if i == 0 else "detail"))
        self.parts.append("</g>")

    def edge(self, start: tuple[float, float], cx: float, top: float, label: str = "") -> None:
        sx, sy = start
        mid = top - V_GAP / 2
        path = (
            f"M{sx:g} {sy:g} V{mid:g} H{cx:g} V{top:g}" if sx != cx else f"M{sx:g} {sy:g} V{top:g}"
        )
        self.parts.append(f'<path class="edge" d="{path}" marker-end="url(#arrow)"/>')
        if label:
            self.parts.append(_text((sx + cx) / 2 + 4, mid - 5, label, "edge-label"))


def _width(steps: Sequence[Step]) -> float:
    widest = float(NODE_W)
    for step in steps:
        paths = _paths(step)
        if paths:
            side_by_side = sum(_width(sub) for _, sub in paths) + H_GAP * (len(paths) - 1)
            widest = max(widest, side_by_side)
    return widest


# A nested list's label on the diagram's edge, when it is not the list's key in YAML.
_PATH_LABELS = {"on_event": "event", "on_timeout": "timeout"}


def _paths(step: Step) -> list[tuple[str, list[Step]]]:
    """The step's nested lists, drawn side by side, each with its edge's label."""
    return [(_PATH_LABELS.get(key, key), steps) for key, steps in step.child_lists()]


def _condition(step: BranchStep) -> str:
    cond = step.if_
    if isinstance(cond, AudienceCondition):
        try:
            return describe(parse_rule(cond.audience))
        except AudienceError:
            return "an audience rule"
    if cond.op == "exists":
        return f"{cond.context} {'is set' if cond.value else 'is not set'}"
    return f"{cond.context} {OPS[cond.op]} {json.dumps(cond.value, ensure_ascii=False)}"


def _counts_line(counts: StepCounts | None) -> str:
    c = counts or StepCounts()
    line = f"sent {c.sent} · skipped {c.skipped} · deferred {c.deferred}"
    return line + (f" · failed {c.failed}" if c.failed else "")


def _describe_step(step: Step, counts: dict[str, StepCounts]) -> tuple[str, list[str]]:
    match step:
        case SendStep():
            template = step.template or ", ".join(v.template for v in step.variants or [])
            return "send", [
                f"send {step.channel} · {step.id}",
                template,
                _counts_line(counts.get(step.id)),
            ]
        case WaitStep():
            return "wait", [f"wait {format_duration(step.duration)}", step.id]
        case WaitUntilStep():
            return "wait", [f"wait until {step.at or f'{step.local_time} local'}", step.id]
        case WaitForStep():
            timeout = format_duration(step.timeout)
            return "wait", [f"wait for {step.event}", f"{step.id} · timeout {timeout}"]
        case BranchStep():
            return "branch", [f"if {_condition(step)}", step.id]
        case IssueCouponStep():
            offer = f"¥{step.amount:g} off ¥{step.min_spend:g}+"
            return "coupon", [
                f"coupon {offer}",
                f"{step.id} · valid {format_duration(step.valid_for)}",
            ]
        case ExitStep():
            return "exit", ["exit", step.id]
        case _:
            assert_never(step)


Point = tuple[float, float]


def _draw(
    canvas: _Canvas, steps: Sequence[Step], cx: float, y: float, ends: list[Point], label: str = ""
) -> tuple[float, list[Point]]:
    """Draw ``steps`` from ``y`` centred on ``cx``; the open ends and the next free y."""
    for step in steps:
        kind, lines = _describe_step(step, canvas.counts)
        for end in ends:
            canvas.edge(end, cx, y, label)
        label = ""
        canvas.node(cx, y, kind, lines, step.id)
        bottom: Point = (cx, y + NODE_H)
        paths = _paths(step)
        if isinstance(step, ExitStep):
            return y + NODE_H + V_GAP, []
        if not paths:
            ends, y = [bottom], y + NODE_H + V_GAP
            continue
        widths = [_width(sub) for _, sub in paths]
        left = cx - (sum(widths) + H_GAP * (len(paths) - 1)) / 2
        below, ends = y + NODE_H + V_GAP, []
        y_next = below
        for (sub_label, sub), w in zip(paths, widths, strict=True):
            sub_cx, left = left + w / 2, left + w + H_GAP
            if sub:
                sub_y, sub_ends = _draw(canvas, sub, sub_cx, below, [bottom], sub_label)
            else:  # nothing on this path: it goes straight on
                canvas.edge(bottom, sub_cx, below - V_GAP / 3, sub_label)
                sub_y, sub_ends = below, [(sub_cx, below - V_GAP / 3)]
            ends += sub_ends
            y_next = max(y_next, sub_y)
        y = y_next
    return y, ends


def _trigger_line(journey: Journey) -> str:
    trigger = journey.trigger
    if trigger.schedule is not None:
        audience = trigger.schedule.audience
        named = f" · {audience}" if isinstance(audience, str) else ""
        return f"schedule {trigger.schedule.cron}{named}"
    return f"on {trigger.event}" + (f" (per {trigger.key})" if trigger.key else "")


def journey_diagram(
    journey: Journey, counts: dict[str, StepCounts], totals: JourneyTotals
) -> Markup:
    """The journey's steps top to bottom, branches side by side, with live counts."""
    canvas = _Canvas(counts)
    width = _width(journey.steps) + 2 * MARGIN
    cx = width / 2
    canvas.node(cx, MARGIN, "start", [_trigger_line(journey), f"entered {totals.entered}"])
    y, ends = _draw(canvas, journey.steps, cx, MARGIN + NODE_H + V_GAP, [(cx, MARGIN + NODE_H)])
    goal = journey.goal
    done = (
        [f"goal: {' or '.join(goal.events())} within {format_duration(goal.within)}"]
        if goal
        else ["end"]
    )
    for end in ends:
        canvas.edge(end, cx, y)
    canvas.node(cx, y, "end", [*done, f"converted {totals.converted} · running {totals.running}"])
    height = y + NODE_H + MARGIN
    return Markup(  # noqa: S704 - every text inside was escaped above
        f'<svg xmlns="http://www.w3.org/2000/svg" class="diagram" role="img" '
        f'aria-label="steps of {escape(journey.id)}" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0 0 L10 5 L0 10 z" class="arrowhead"/>'
        "</marker></defs>" + "".join(canvas.parts) + "</svg>"
    )


CHART_W, CHART_H = 640, 260
PAD_L, PAD_R, PAD_T, PAD_B = 56, 20, 20, 44
SERIES = (("treatment", "series-treatment"), ("holdout", "series-holdout"))


def conversion_chart(points: list[ConversionPoint]) -> Markup:
    """Cumulative conversion rate by day, treatment vs holdout, as a line chart."""
    parts: list[str] = []
    rates = [p.rate(g) for p in points for g, _ in SERIES]
    top = max([r for r in rates if r is not None] + [0.0])
    top = max(0.05, min(1.0, top * 1.15))
    plot_w, plot_h = CHART_W - PAD_L - PAD_R, CHART_H - PAD_T - PAD_B

    def x_at(i: int) -> float:
        return PAD_L + (plot_w * i / (len(points) - 1) if len(points) > 1 else plot_w / 2)

    def y_at(rate: float) -> float:
        return PAD_T + plot_h * (1 - rate / top)

    for frac in (0.0, 0.5, 1.0):
        y = y_at(top * frac)
        parts.append(
            f'<line class="grid" x1="{PAD_L}" x2="{CHART_W - PAD_R}" y1="{y:g}" y2="{y:g}"/>'
        )
        parts.append(_text(PAD_L - 6, y + 4, f"{top * frac:.0%}", "axis", "end"))
    if not points:
        parts.append(_text(CHART_W / 2, CHART_H / 2, "nobody has entered yet", "axis"))
    else:
        first, last = points[0].day.isoformat(), points[-1].day.isoformat()
        parts.append(_text(PAD_L, CHART_H - PAD_B + 18, first, "axis", "start"))
        if len(points) > 1:
            parts.append(_text(CHART_W - PAD_R, CHART_H - PAD_B + 18, last, "axis", "end"))
    for n, (group, cls) in enumerate(SERIES):
        coords = [
            (x_at(i), y_at(rate))
            for i, p in enumerate(points)
            if (rate := p.rate(group)) is not None
        ]
        if len(coords) > 1:
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline class="{cls}" data-group="{group}" points="{pts}"/>')
        parts.extend(f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="3"/>' for x, y in coords)
        legend_x = PAD_L + n * 130
        parts.append(
            f'<rect class="{cls}" x="{legend_x}" y="{CHART_H - 16}" width="12" height="4"/>'
        )
        parts.append(_text(legend_x + 18, CHART_H - 11, group, "axis", "start"))
    return Markup(  # noqa: S704 - every text inside was escaped above
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'aria-label="conversion rate over time" width="{CHART_W}" height="{CHART_H}" '
        f'viewBox="0 0 {CHART_W} {CHART_H}">' + "".join(parts) + "</svg>"
    )
