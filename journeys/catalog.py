"""The event catalogue (``journeys/events.yaml``): events the platform sends, their
properties and types. Validation checks journeys against it; template checks render with
sample properties made from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

CATALOG_FILE = Path(__file__).parent / "events.yaml"
TYPES = ("string", "number", "bool", "timestamp", "list", "object")


@dataclass(frozen=True)
class PropertySpec:
    type: str
    required: bool = False
    description: str = ""
    example: Any = None
    # Travels into every run that hears the event, even if no journey names it (see
    # ``journeys/used_properties.py``); other unused properties stay in the events table.
    carry: bool = False


@dataclass(frozen=True)
class EventSpec:
    name: str
    description: str = ""
    properties: dict[str, PropertySpec] = field(default_factory=dict)

    def sample_properties(self, now: datetime | None = None) -> dict[str, Any]:
        """Plausible values for every property, for rendering templates at validation."""
        now = now or datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
        samples: dict[str, Any] = {}
        for name, spec in self.properties.items():
            if spec.example is not None:
                samples[name] = spec.example
                continue
            samples[name] = {
                "string": f"sample_{name}",
                "number": 199,
                "bool": False,
                "timestamp": (now + timedelta(days=3)).isoformat(),
                "list": [],
                "object": {},
            }[spec.type]
        return samples


class CatalogError(ValueError):
    pass


def load_catalog(path: Path = CATALOG_FILE) -> dict[str, EventSpec]:
    """Events by name; raises :class:`CatalogError` naming the event and property."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    events = data.get("events")
    if not isinstance(events, dict):
        raise CatalogError(f"{path}: an `events:` mapping is required")
    catalog = {}
    for name, body in events.items():
        body = body or {}
        props = {}
        for prop, spec in (body.get("properties") or {}).items():
            if not isinstance(spec, dict) or spec.get("type") not in TYPES:
                raise CatalogError(f"{path}: {name}.{prop}: type must be one of {TYPES}")
            if not isinstance(spec.get("carry", False), bool):
                raise CatalogError(f"{path}: {name}.{prop}: carry must be true or false")
            props[prop] = PropertySpec(
                type=spec["type"],
                required=bool(spec.get("required", False)),
                description=str(spec.get("description", "")),
                example=spec.get("example"),
                carry=spec.get("carry", False),
            )
        catalog[name] = EventSpec(name, str(body.get("description", "")), props)
    return catalog
