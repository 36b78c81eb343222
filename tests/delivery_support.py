"""Delivery activities as tests build them, and a journey's send step as its workflow runs
it: the policy (``prepare_send``), then, if it passed, the provider call (``send_message``)."""

from __future__ import annotations

from collections.abc import Mapping

from activities.delivery import DeliveryActivities, DeliveryDeps
from activities.policy import DeliveryRules, FrequencyCap, QuietHours
from channels.base import Channel
from channels.outbox import OutboxChannel
from message_templates.render import TemplateRenderer
from message_templates.unsubscribe_links import UnsubscribeLinks
from store.db import SessionFactory
from store.outbox import SqlOutboxSink
from workflows.journey_contracts import DeliverInput, DeliverResult

LINKS = UnsubscribeLinks("test-unsubscribe-secret", prefix="http://127.0.0.1:8000/u")


def delivery_activities(
    factory: SessionFactory,
    channels: Mapping[str, Channel],
    *,
    renderer: TemplateRenderer | None = None,
    quiet_hours: str | None = None,
    caps: tuple[FrequencyCap, ...] = (),
    links: UnsubscribeLinks = LINKS,
    global_control_percent: float = 0.0,
) -> DeliveryActivities:
    """The delivery activities over ``channels``; ``quiet_hours`` as ``"21:00-08:00"``."""
    rules = DeliveryRules(
        quiet_hours=QuietHours.parse(quiet_hours) if quiet_hours else None,
        caps=caps,
        global_control_percent=global_control_percent,
    )
    return DeliveryActivities(
        DeliveryDeps(
            factory=factory,
            renderer=renderer or TemplateRenderer(),
            channels=channels,
            unsubscribe_links=links,
            rules=rules,
        )
    )


def outbox_delivery(
    factory: SessionFactory,
    *,
    quiet_hours: str | None = None,
    caps: tuple[FrequencyCap, ...] = (),
    global_control_percent: float = 0.0,
) -> DeliveryActivities:
    """The delivery activities with every channel recording into the outbox table."""
    sink = OutboxChannel(SqlOutboxSink(factory))
    channels = {"sms": sink, "email": sink, "push": sink}
    return delivery_activities(
        factory,
        channels,
        quiet_hours=quiet_hours,
        caps=caps,
        global_control_percent=global_control_percent,
    )


def deliver(delivery: DeliveryActivities, inp: DeliverInput) -> DeliverResult:
    """A journey's send step: ``prepare_send``, then ``send_message`` if it is ready."""
    decided = delivery.prepare_send(inp)
    return delivery.send_message(inp) if decided.status == "ready" else decided
