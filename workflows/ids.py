"""Workflow ids, one builder per workflow: deterministic, so a retried start finds the run
already going (Temporal refuses or reuses the id) instead of starting a second one."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote


def journey_workflow_id(journey_id: str, user_id: str, key: str = "", entry: int = 1) -> str:
    """``journey:{journey}:{user}[:{key}][:{entry}]``, each part percent-encoded.

    Ids may contain ``:``; encoding keeps ``journey:a:b:c`` unambiguous.
    """
    parts = ["journey", quote(journey_id, safe=""), quote(user_id, safe="")]
    if key:
        parts.append(quote(key, safe=""))
    if entry > 1:
        parts.append(str(entry))
    return ":".join(parts)


def sweep_workflow_id(journey_id: str, tick: datetime) -> str:
    """``sweep:{journey}:{tick}``: the journey id percent-encoded, the tick in UTC to the
    second (as ``journeys.schedule.tick_label`` writes it)."""
    label = tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"sweep:{quote(journey_id, safe='')}:{label}"


def broadcast_workflow_id(broadcast_id: int) -> str:
    """``broadcast:{id}``: one workflow per ``broadcasts`` row."""
    return f"broadcast:{broadcast_id}"
