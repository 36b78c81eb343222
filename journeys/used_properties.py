"""Which event properties a journey's runs need, so only those travel into Temporal.

Temporal history is stored in plain text and outlives ``lifecycle users forget``, so a run gets
the properties its journey uses and no more: a phone number or a shipping address sent as an
extra property stays in the events table, where erasure reaches it.

A journey uses a property when

- its trigger's ``where`` or ``key`` names it (the key on every event the run hears: a run
  tells its own cart's events from another's by it);
- its goal's or a ``wait_for``'s ``where`` names it, on that event;
- a branch condition or a ``wait_until`` reads ``trigger.properties.NAME`` (or ``coupon.NAME``,
  which a ``coupon_issued`` run reads from its trigger);
- one of its templates reads ``trigger.properties.NAME``, ``trigger.properties['NAME']`` or
  ``trigger.properties.get('NAME')``; one that reads ``coupon`` needs the coupon fields a
  ``coupon_issued`` trigger announces. A template that reads ``trigger.properties`` any other
  way (a loop over it, a filter on the whole) gets the trigger's properties whole.

The event catalogue may mark a property ``carry: true``: it then travels to every run that
hears its event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError

from journeys.catalog import EventSpec, load_catalog
from journeys.models import (
    BranchStep,
    ContextCondition,
    Journey,
    SendStep,
    WaitForStep,
    WaitUntilStep,
    walk,
)
from message_templates.environment import build_environment
from message_templates.errors import InvalidTemplateError
from message_templates.render import TEMPLATES_DIRECTORY
from message_templates.spec import read_template_file

# The fields of a coupon announced by a ``coupon_issued`` trigger (what ``deliver`` reads to
# build a template's ``coupon`` when the run issued none).
COUPON_PROPERTIES = frozenset({"coupon_code", "amount_fen", "min_spend_fen", "expires_at"})
# Dict methods: ``trigger.properties.items()`` reads every property.
_DICT_METHODS = frozenset({"items", "keys", "values", "get"})

Names = frozenset[str] | None  # None: every property


@dataclass(frozen=True)
class UsedProperties:
    """The properties one journey's runs get: of the trigger that starts a run, and of each
    event a running run hears (a repeated trigger counts as both). ``None``: all of them."""

    trigger: Names = frozenset()
    heard: Mapping[str, Names] = field(default_factory=dict)

    def of_trigger(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        """The trigger's properties a run starts with."""
        return _only(properties, self.trigger)

    def of_signal(self, event: str, properties: Mapping[str, Any]) -> dict[str, Any]:
        """The properties of ``event`` a running run is signalled with."""
        return _only(properties, self.heard.get(event, frozenset()))


def _only(properties: Mapping[str, Any], names: Names) -> dict[str, Any]:
    if names is None:
        return dict(properties)
    return {k: v for k, v in properties.items() if k in names}


class _Uses:
    """What a template reads of ``trigger.properties`` and whether it reads ``coupon``."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.whole = False
        self.coupon = False

    def scan(self, node: nodes.Node) -> None:
        if isinstance(node, nodes.Call) and _is_properties_get(node.node) and node.args:
            first = node.args[0]
            if isinstance(first, nodes.Const) and isinstance(first.value, str):
                self.names.add(first.value)
            else:
                self.whole = True
            for child in [*node.args[1:], *node.kwargs]:
                self.scan(child)
            return
        if isinstance(node, nodes.Getattr) and _is_properties(node.node):
            if node.attr in _DICT_METHODS:
                self.whole = True
            else:
                self.names.add(node.attr)
            return
        if isinstance(node, nodes.Getitem) and _is_properties(node.node):
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                self.names.add(node.arg.value)
            else:
                self.whole = True
                self.scan(node.arg)
            return
        if _is_properties(node):  # the properties as a whole: a loop, a filter, a `set`
            self.whole = True
            return
        if isinstance(node, nodes.Getattr | nodes.Getitem) and _is_trigger(node.node):
            if _key(node) in ("event", "timestamp"):
                return
            self.whole = True  # trigger['prop' + 'erties'] or the like
            return
        if _is_trigger(node):  # `{% set t = trigger %}`: whatever t reads next is unknown
            self.whole = True
            return
        if isinstance(node, nodes.Name) and node.name == "coupon":
            self.coupon = True
        for child in node.iter_child_nodes():
            self.scan(child)


def _is_trigger(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "trigger"


def _key(node: nodes.Getattr | nodes.Getitem) -> Any:
    if isinstance(node, nodes.Getattr):
        return node.attr
    return node.arg.value if isinstance(node.arg, nodes.Const) else None


def _is_properties(node: nodes.Node) -> bool:
    return (
        isinstance(node, nodes.Getattr | nodes.Getitem)
        and _is_trigger(node.node)
        and _key(node) == "properties"
    )


def _is_properties_get(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Getattr) and node.attr == "get" and _is_properties(node.node)


def template_uses(sources: Iterable[str]) -> tuple[Names, bool]:
    """The trigger properties Jinja ``sources`` read (None: all of them), and whether they
    read ``coupon``. A source that does not parse reads nothing (it cannot render either)."""
    env = build_environment(html=False)
    uses = _Uses()
    for source in sources:
        try:
            uses.scan(env.parse(source))
        except TemplateSyntaxError:
            continue
    return (None if uses.whole else frozenset(uses.names)), uses.coupon


def _template_sources(name: str, directory: Path) -> list[str]:
    path = directory / f"{name}.yaml"
    try:
        spec = read_template_file(path, name=name)
    except (OSError, InvalidTemplateError):
        return []  # a missing or broken template fails its send; it needs no property
    sources = [part.source for parts in spec.locales.values() for part in parts.values()]
    return sources + [part.source for part in spec.data.values()]


def _template_names(journey: Journey) -> list[str]:
    return [
        name
        for step in walk(journey.steps)
        if isinstance(step, SendStep)
        for name, _ in step.templates()
    ]


def _context_property(ref: str) -> str | None:
    """The trigger property a context reference reads: ``trigger.properties.NAME`` or
    ``coupon.NAME`` (a ``coupon_issued`` run's coupon comes from its trigger)."""
    if ref.startswith("trigger.properties."):
        return ref.split(".", 2)[2]
    if ref.startswith("coupon."):
        return ref.split(".", 1)[1]
    return None


def used_properties(
    journey: Journey,
    *,
    catalog: Mapping[str, EventSpec] | None = None,
    templates: Path | None = None,
) -> UsedProperties:
    """The properties ``journey``'s runs need (see the module's docstring).

    Args:
        journey: The journey.
        catalog: The event catalogue (``events.yaml`` by default), for ``carry: true``.
        templates: Where its templates live (the shipped templates by default).
    """
    catalog = load_catalog() if catalog is None else catalog
    trigger = journey.trigger
    key = {trigger.key} if trigger.key else set()
    own: set[str] = set(trigger.where) | key
    for step in walk(journey.steps):
        ref = None
        if isinstance(step, BranchStep) and isinstance(step.if_, ContextCondition):
            ref = step.if_.context
        elif isinstance(step, WaitUntilStep) and step.at is not None:
            ref = step.parts()[0]
        name = _context_property(ref) if ref else None
        if name:
            own.add(name)
    directory = templates if templates is not None else TEMPLATES_DIRECTORY
    sources = [
        s for n in dict.fromkeys(_template_names(journey)) for s in _template_sources(n, directory)
    ]
    read, coupon = template_uses(sources)
    if coupon:
        own |= COUPON_PROPERTIES

    def carried(event: str | None) -> set[str]:
        spec = catalog.get(event) if event else None
        return {n for n, p in spec.properties.items() if p.carry} if spec else set()

    trigger_names: Names = None if read is None else frozenset(own | read | carried(trigger.event))
    heard: dict[str, set[str]] = {
        event: set(key) | carried(event) for event in journey.listens_for()
    }
    if journey.goal is not None:
        for event in journey.goal.events():
            heard[event] |= set(journey.goal.where)
    for step in walk(journey.steps):
        if isinstance(step, WaitForStep):
            heard[step.event] |= set(step.where)
    heard_names: dict[str, Names] = {event: frozenset(names) for event, names in heard.items()}
    if trigger.event is not None and trigger.event in heard:
        # A repeated trigger restarts the run as its new trigger: it needs what a trigger does.
        heard_names[trigger.event] = (
            None if trigger_names is None else trigger_names | heard[trigger.event]
        )
    return UsedProperties(trigger=trigger_names, heard=heard_names)
