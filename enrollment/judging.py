"""Judging a stored event: whether it could act at all, which published journeys it enters
its user into (trigger, filter, age, entry key), whether a closed enrollment may be entered
again, and which of the user's open runs it reaches."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from enrollment.versions import JourneySpecs
from journeys.conditions import matches
from journeys.models import Journey
from journeys.used_properties import UsedProperties
from store.models import Enrollment, Event
from workflows.journey_contracts import EventSignal

# Routing logs under one name, whichever part of it speaks.
log = logging.getLogger("enrollment.router")

# A run to signal: its workflow id, and the properties its journey uses.
Target = tuple[str, UsedProperties]


def signal_of(event: Event) -> EventSignal:
    """The signal a stored ``track`` event becomes."""
    assert event.event is not None
    return EventSignal(
        message_id=event.message_id,
        event=event.event,
        timestamp=event.timestamp,
        properties=dict(event.properties or {}),
    )


def may_act(event: Event, acted_on: frozenset[str]) -> bool:
    """Whether routing ``event`` could start, signal or redeem anything."""
    return (
        event.type == "track"
        and bool(event.user_id)
        and event.event is not None
        and event.event in acted_on
    )


def triggered(
    event: Event,
    signal: EventSignal,
    journeys: list[tuple[int, Journey]],
    *,
    now: datetime,
    max_trigger_age: timedelta,
) -> list[tuple[int, Journey, str]]:
    """The journeys ``event`` may enter its user into, with the entry key of each."""
    too_old = now - event.timestamp > max_trigger_age
    found: list[tuple[int, Journey, str]] = []
    for version, journey in journeys:
        trigger = journey.trigger
        if trigger.event != event.event or not matches(trigger.where, signal.properties):
            continue
        if too_old:
            log.info("event %s too old to enter %s", event.message_id, journey.id)
            continue
        key = ""
        if trigger.key:
            value = signal.properties.get(trigger.key)
            if value is None or isinstance(value, dict | list) or value == "":
                log.warning(
                    "event %s lacks key %s for %s", event.message_id, trigger.key, journey.id
                )
                continue
            key = str(value)
        found.append((version, journey, key))
    return found


def may_reenter(journey: Journey, exited_at: datetime, now: datetime) -> bool:
    """Whether a user whose enrollment closed at ``exited_at`` may enter again at ``now``."""
    policy = journey.re_entry
    if policy == "never":
        return False
    if policy == "always":
        return True
    return now >= exited_at + policy.after


def open_runs_stmt() -> Select[str, str, str | None, str, str, int]:
    """Open enrollments, with what decides whether an event reaches each (narrow it with a
    ``where`` on the user)."""
    return select(
        Enrollment.user_id,
        Enrollment.workflow_id,
        Enrollment.trigger_message_id,
        Enrollment.entry_key,
        Enrollment.journey_id,
        Enrollment.journey_version,
    ).where(Enrollment.exited_at.is_(None))


def reached(
    session: Session, specs: JourneySpecs, rows: Sequence[Any], signal: EventSignal
) -> list[Target]:
    """Of a user's open runs (rows of :func:`open_runs_stmt`), the ones ``signal`` concerns,
    with what each may hear."""
    targets = []
    for _, wid, trigger_id, key, journey_id, version in rows:
        journey = specs.spec(session, journey_id, version)
        if trigger_id == signal.message_id or not journey.concerns(signal.event):
            continue
        # A keyed run hears events of its own key, and key-less ones (account_deleted).
        name = journey.trigger.key
        if name and name in signal.properties and str(signal.properties[name]) != key:
            continue
        targets.append((wid, specs.used(journey, version)))
    return targets
