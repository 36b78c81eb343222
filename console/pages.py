"""What each console page shows, read from the store; the routes in ``console.app`` render it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from temporalio.client import Client

from console.intervals import error_bar
from console.queries import (
    conversions_over_time,
    filter_choices,
    journey_totals,
    messages_page,
    step_counts,
    user_view,
)
from console.svg import conversion_chart, journey_diagram
from devstack.money_view import (
    difference_rows,
    interval,
    points,
    pricing_line,
    roi_line,
    signed_yuan,
    split_line,
    yuan,
)
from enrollment.runs_admin import RunsAdmin
from journeys.catalog import load_catalog
from journeys.models import Journey
from journeys.validate import (
    JourneyError,
    check_events,
    check_templates,
    parse_journey,
    shipped_journey_files,
)
from message_templates.render import TemplateRenderer
from store.db import SessionFactory, transaction
from store.journeys import latest_version, live_journeys, publish, set_status, spec_of
from store.money import Costs, MoneyReport, money_report
from store.rejected import list_rejected, pending_counts
from store.reports import JourneyReport, journey_report, user_timeline
from store.saved_audiences import saved_names
from store.uplift import Money
from store.users import find_users
from store.variants import variant_tests
from triggers.profiles import normalize_phone
from triggers.replay import ReplayError, replay
from triggers.segment import Limits

SAMPLE_SIZE = 20


def _with_money(report: JourneyReport) -> dict[str, Any]:
    """A report and its money as the Reports pages show it: the terminal's words, and each
    difference with its interval drawn as an error bar."""
    money = report.money
    if money is None:
        return {"report": report, "money": None}
    j = money.journey
    return {
        "report": report,
        "money": {
            "pricing": pricing_line(money),
            "journey": j,
            "groups": [
                (name, g, yuan(g.gmv_fen), yuan(g.coupon_fen), yuan(g.message_fen))
                for name, g in (("treatment", j.treatment), ("holdout", j.holdout))
            ],
            "differences": [(row, error_bar(row.estimate)) for row in difference_rows(j)],
            "spend": yuan(j.spend_fen),
            "roi": roi_line(j),
            "split": split_line(money),
            "mismatch": bool(money.sample_ratio and money.sample_ratio.mismatch),
            "steps": step_money(money),
        },
    }


def step_money(money: MoneyReport) -> list[tuple[Money, str, str, str]]:
    """Per send step (and A/B variant): the step's money, its conversion lift in points and
    its GMV per entrant against the holdout, each with its interval, and what it cost."""
    return [
        (
            s,
            f"{points(s.conversion.value)} {interval(s.conversion, points)}".strip(),
            f"{signed_yuan(s.gmv_per_entrant_fen.value)} "
            f"{interval(s.gmv_per_entrant_fen, signed_yuan)}".strip(),
            yuan(s.spend_fen),
        )
        for s in money.steps
    ]


PASTED = "<pasted YAML>"
NOTICES = {
    "published": "Published: new entries take this version; running ones keep theirs.",
    "unchanged": "Nothing to publish: the YAML equals the latest version.",
    "paused": "Paused: sends are held until the journey is resumed.",
    "resumed": "Resumed: held sends go out on their next check.",
}
LABELS = {"published": "live", "paused": "paused", "": "not published"}


@dataclass
class PublishOutcome:
    journey_id: str | None
    version: int | None = None
    did: str = ""
    errors: list[str] = field(default_factory=list)


class ConsolePages:
    """Read models of the console pages, and its two actions (publish, pause/resume)."""

    def __init__(
        self,
        factory: SessionFactory,
        *,
        now: Callable[[], datetime],
        costs: Costs | None = None,
        default_timezone: str | None = None,
    ):
        self._factory = factory
        self._now = now
        self._costs = costs or Costs()
        self._default_timezone = default_timezone

    @cached_property
    def _renderer(self) -> TemplateRenderer:
        return TemplateRenderer()

    @staticmethod
    def _shipped_files() -> dict[str, Path]:
        return {p.stem: p for p in shipped_journey_files()}

    def _shipped(self, journey_id: str) -> tuple[Journey, str] | None:
        path = self._shipped_files().get(journey_id)
        if path is None:
            return None
        text = path.read_text(encoding="utf-8")
        return parse_journey(text, file=str(path)), text

    @staticmethod
    def notice(did: str) -> str:
        return NOTICES.get(did, "")

    def journeys(self) -> list[dict[str, Any]]:
        shipped = self._shipped_files()
        rows: list[dict[str, Any]] = []
        with self._factory() as session:
            for row in live_journeys(session):
                rows.append(
                    {
                        "id": row.journey_id,
                        "name": spec_of(row).name,
                        "status": row.status,
                        "label": LABELS.get(row.status, row.status),
                        "version": row.version,
                        "published_at": row.published_at,
                        "totals": journey_totals(session, journey_id=row.journey_id),
                        "shipped": row.journey_id in shipped,
                    }
                )
            published = {r["id"] for r in rows}
            for journey_id in sorted(set(shipped) - published):
                found = self._shipped(journey_id)
                rows.append(
                    {
                        "id": journey_id,
                        "name": found[0].name if found else journey_id,
                        "status": "",
                        "label": LABELS[""],
                        "version": None,
                        "published_at": None,
                        "totals": journey_totals(session, journey_id=journey_id),
                        "shipped": True,
                    }
                )
        return rows

    def journey(self, journey_id: str) -> dict[str, Any] | None:
        with self._factory() as session:
            row = latest_version(session, journey_id=journey_id)
            if row is not None:
                spec, source, status, version = spec_of(row), row.source, row.status, row.version
            else:
                found = self._shipped(journey_id)
                if found is None:
                    return None
                (spec, source), status, version = found, "", None
            counts = step_counts(session, journey_id=journey_id)
            totals = journey_totals(session, journey_id=journey_id)
            variants = variant_tests(session, journey_id=journey_id)
            money = (
                money_report(session, journey_id=journey_id, costs=self._costs)
                if row is not None
                else None
            )
        return {
            "title": spec.name,
            "journey": spec,
            "source": source,
            "status": status,
            "label": LABELS.get(status, status),
            "version": version,
            "totals": totals,
            "shipped": journey_id in self._shipped_files(),
            "diagram": journey_diagram(spec, counts, totals),
            "variant_tests": variants,
            "step_money": step_money(money) if money is not None else [],
            "money_window": money.window if money is not None else "",
        }

    def runs(self, client: Client) -> RunsAdmin:
        """Who is where in a journey, and ejecting runs (the journey page), via ``client``."""
        return RunsAdmin(factory=self._factory, client=client)

    def set_status(self, journey_id: str, status: str) -> None:
        with transaction(self._factory) as session:
            set_status(session, journey_id=journey_id, status=status)

    def publish(self, *, shipped: str, text: str) -> PublishOutcome:
        """Publish a shipped journey by id, or pasted YAML after full validation."""
        if shipped:
            path = self._shipped_files().get(shipped)
            if path is None:
                return PublishOutcome(None, errors=[f"no shipped journey {shipped!r}"])
            text, file = path.read_text(encoding="utf-8"), str(path)
        elif text.strip():
            file = PASTED
        else:
            return PublishOutcome(None, errors=[f"{PASTED}: the journey YAML is empty"])
        try:
            journey = parse_journey(text, file=file)
        except JourneyError as exc:
            return PublishOutcome(None, errors=[str(p) for p in exc.problems])
        catalog = load_catalog()
        with transaction(self._factory) as session:
            problems = check_events(
                journey, catalog, file=file, saved_audiences=saved_names(session)
            )
            problems += check_templates(journey, self._renderer, file=file, catalog=catalog)
            errors = [str(p) for p in problems if p.severity == "error"]
            if errors:
                return PublishOutcome(journey.id, errors=errors)
            before = latest_version(session, journey_id=journey.id)
            row = publish(
                session, journey=journey, source=text, now=self._now(), published_by="console"
            )
            did = "unchanged" if before is not None and before.id == row.id else "published"
            return PublishOutcome(journey.id, row.version, did)

    def messages(
        self, filters: dict[str, str], before: int | None, *, days: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        """The ledger page; ``days`` ``from`` and ``to`` (``YYYY-MM-DD`` in the default zone,
        both inclusive) bound when the rows were created; None when one is not a date."""
        days = days or {}
        try:
            low = self._day_start(days.get("from", ""))
            high = self._day_start(days.get("to", ""), after=True)
        except ValueError:
            return None
        with self._factory() as session:
            page = messages_page(session, filters=filters, before=before, created=(low, high))
            choices = filter_choices(session)
        kept = {k: v for k, v in {**filters, **days}.items() if v}
        return {
            "title": "Messages",
            "page": page,
            "choices": choices,
            "filters": filters,
            "days": days,
            "next_query": urlencode({**kept, "before": page.next_before or ""}),
        }

    def _day_start(self, day: str, *, after: bool = False) -> datetime | None:
        """The instant ``day`` (``YYYY-MM-DD``) begins in the default zone, or the next day
        begins when ``after``; None for no day. Raises ValueError for anything else."""
        if not day:
            return None
        start = date.fromisoformat(day.strip())
        if after:
            start += timedelta(days=1)
        zone = ZoneInfo(self._default_timezone or "UTC")
        return datetime.combine(start, time(), tzinfo=zone)

    def rejected(self, *, stage: str, pending: bool, did: str) -> dict[str, Any]:
        """The dead-letter table, newest first: refused calls and parked events."""
        chosen = stage if stage in ("ingest", "route") else None
        with self._factory() as session:
            rows = list_rejected(session, stage=chosen, pending_only=pending, limit=200)  # type: ignore[arg-type]
            counts = pending_counts(session)
        return {
            "title": "Rejected events",
            "rows": rows,
            "counts": counts,
            "stage": chosen or "",
            "pending": pending,
            "notice": did,
        }

    def replay(self, rejected_id: int, *, limits: Limits, now: datetime) -> str:
        """Replay one row; what happened, in a sentence."""
        try:
            return replay(self._factory, rejected_id=rejected_id, limits=limits, now=now).result
        except ReplayError as exc:
            return str(exc)

    def user(self, user_id: str) -> dict[str, Any] | None:
        with self._factory() as session:
            view = user_view(session, user_id=user_id)
            if view is None:
                return None
            return {
                "title": f"User {user_id}",
                "view": view,
                "timeline": user_timeline(
                    session, user_id=user_id, default_timezone=self._default_timezone
                ),
            }

    def find_users(self, query: str) -> list[Any]:
        """Users by id, email or phone (typed as people type it)."""
        with self._factory() as session:
            return find_users(session, query=query, phone=normalize_phone(query.strip()))

    def reports(self) -> list[Any]:
        with self._factory() as session:
            return [
                _with_money(
                    journey_report(
                        session, journey_id=row.journey_id, costs=self._costs, money_steps=False
                    )
                )
                for row in live_journeys(session)
            ]

    def report(self, journey_id: str, *, since: str = "") -> dict[str, Any] | None:
        """A journey's report, for the entries since ``since`` (``YYYY-MM-DD`` in the default
        zone) or all of them; None for an unpublished journey or a ``since`` not a date."""
        try:
            start = self._day_start(since)
        except ValueError:
            return None
        with self._factory() as session:
            if latest_version(session, journey_id=journey_id) is None:
                return None
            report = journey_report(session, journey_id=journey_id, since=start, costs=self._costs)
            points = conversions_over_time(session, journey_id=journey_id, since=start)
        return {
            "title": f"Report {journey_id}",
            "report": report,
            "money": _with_money(report)["money"],
            "chart": conversion_chart(points),
            "since": since,
            "timezone": self._default_timezone or "UTC",
        }
