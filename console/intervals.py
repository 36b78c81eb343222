"""A difference and its 95% interval as a small error bar (SVG), for the Reports page.

Each bar has its own scale (a conversion rate and a yuan amount share no axis): the span
from the lower end (or 0) to the upper end (or 0), with 0 marked, so whether the interval
covers 0 is what the eye sees. Numbers are drawn by the server, never from user text.
"""

from __future__ import annotations

from markupsafe import Markup

from store.uplift import Estimate

BAR_W, BAR_H, PAD = 220, 18, 8
SURE, UNSURE, AXIS = "#1a7f37", "#8a97a8", "#c3cad4"


def error_bar(estimate: Estimate) -> Markup:
    """The estimate's value as a dot on its interval, 0 as a tick; empty without a value.
    An end with no bound runs to the edge as a dashed line; no interval at all, a lone dot."""
    if estimate.value is None:
        return Markup("")
    ends = [x for x in (estimate.low, estimate.high, estimate.value, 0.0) if x is not None]
    low, high = min(ends), max(ends)
    span = (high - low) or 1.0
    low, high = low - span * 0.05, high + span * 0.05

    def x_at(v: float) -> float:
        return PAD + (BAR_W - 2 * PAD) * (v - low) / (high - low)

    colour = SURE if estimate.significant else UNSURE
    mid = BAR_H / 2
    parts = [
        f'<line x1="{PAD}" x2="{BAR_W - PAD}" y1="{mid}" y2="{mid}" stroke="{AXIS}"/>',
        f'<line class="zero" x1="{x_at(0):.1f}" x2="{x_at(0):.1f}" y1="2" y2="{BAR_H - 2}" '
        f'stroke="#1d2433"/>',
    ]
    if estimate.low is not None or estimate.high is not None:
        x1 = x_at(estimate.low) if estimate.low is not None else PAD
        x2 = x_at(estimate.high) if estimate.high is not None else BAR_W - PAD
        dash = "" if None not in (estimate.low, estimate.high) else ' stroke-dasharray="3 2"'
        parts.append(
            f'<line class="interval" x1="{x1:.1f}" x2="{x2:.1f}" y1="{mid}" y2="{mid}" '
            f'stroke="{colour}" stroke-width="3"{dash}/>'
        )
        parts.extend(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{mid - 4}" y2="{mid + 4}" stroke="{colour}"/>'
            for x, end in ((x1, estimate.low), (x2, estimate.high))
            if end is not None
        )
    parts.append(
        f'<circle class="value" cx="{x_at(estimate.value):.1f}" cy="{mid}" r="3.5" '
        f'fill="{colour}"/>'
    )
    return Markup(  # noqa: S704 - numbers only, formatted here
        f'<svg xmlns="http://www.w3.org/2000/svg" class="error-bar" role="img" '
        f'aria-label="95% interval" width="{BAR_W}" height="{BAR_H}" '
        f'viewBox="0 0 {BAR_W} {BAR_H}">' + "".join(parts) + "</svg>"
    )
