"""A broadcast's status in words, the same on the terminal (``lifecycle broadcast``) and in
the console: its list line, its ledger line, and its money review against its holdout."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from devstack.money_view import print_money, yuan
from store.broadcast_money import BroadcastMoney
from store.models import Broadcast


def list_line(row: Broadcast) -> str:
    """``    3 completed  2026-06-15 12:00Z sms         12 VIP 618``"""
    return (
        f"{row.id:>5} {row.status:10} {row.send_at:%Y-%m-%d %H:%M}Z {row.channel:5} "
        f"{row.recipients:>8} {row.name}"
    )


def ledger_line(row: Broadcast, counts: dict[tuple[str, str | None], int]) -> str:
    """``completed: 12 recipient(s); ledger: sent 12``"""
    ledger = ", ".join(
        f"{s}{f' ({r})' if r else ''} {n}" for (s, r), n in sorted(counts.items(), key=str)
    )
    return f"{row.status}: {row.recipients} recipient(s); ledger: {ledger or 'nothing yet'}"


def review_lines(review: BroadcastMoney) -> list[str]:
    """The review's heading (closed, or provisional until when) and, without a holdout, the
    attributed orders alone and how to get an ROI; with one, what the spend is (the money
    table, :func:`devstack.money_view.print_money`, follows)."""
    window = f"{review.report.window} after each recipient was reached"
    if review.closed:
        assert review.closes_at is not None
        heading = f"money review (orders {window}; the window closed {_at(review.closes_at)})"
    elif review.closes_at is not None:
        heading = f"money review, PROVISIONAL until {_at(review.closes_at)} (orders {window})"
    else:
        heading = (
            f"money review, PROVISIONAL: the broadcast is still reaching recipients; the "
            f"window closes {review.report.window} after the last one (orders {window})"
        )
    if not review.has_holdout:
        t = review.report.journey.treatment
        return [
            heading,
            "ROI needs a holdout: start a broadcast with --holdout 5 to compare its recipients "
            "with members sent nothing. Attributed orders only:",
            f"{t.entrants} recipient(s), {t.converted} bought, {t.orders} order(s), GMV "
            f"{yuan(t.gmv_fen)}, coupon cost {yuan(t.coupon_fen)}, message cost "
            f"{yuan(t.message_fen)}",
        ]
    return [
        heading,
        "spend: the recipients' message cost and the coupon cost beyond the holdout's, per "
        "recipient (a broadcast issues no coupon)",
    ]


def review_text(review: BroadcastMoney, *, width: int = 132) -> str:
    """The review as ``lifecycle broadcast status`` prints it (its lines, then the money
    table when there is a holdout to compare with), as plain text ``width`` wide."""
    console = Console(file=io.StringIO(), width=width, color_system=None, record=True)
    for line in review_lines(review):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if review.has_holdout:
        print_money(review.report, console)
    return console.export_text()


def _at(when: datetime) -> str:
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M}Z"
