"""The engine's own Prometheus metrics, recorded wherever the work happens.

Code that did something countable calls the process's recorder, e.g.
``metrics().sent("sms", "twilio")``. Each process installs one recorder where it starts:

- the worker: :func:`start_metrics_endpoint` builds a Temporal runtime whose Prometheus
  exporter serves the SDK's own metrics (``temporal_*``) and ours, created through the same
  runtime's meter, on one endpoint;
- the API: :class:`PrometheusMetrics` (``prometheus_client``), served at ``GET /metrics``;
- anything else (tests, tools): a recorder that does nothing.

Metric names start with ``lifecycle_`` and counters end in ``_total`` on both endpoints.
Labels are low-cardinality: channel, provider, reason, journey, catalogued event name;
never a user id.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from temporalio.common import MetricMeter
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
)

log = logging.getLogger(__name__)

Labels = dict[str, str]


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its name (without ``_total``), help text, label names and kind."""

    name: str
    help: str
    labels: tuple[str, ...]
    kind: Literal["counter", "histogram"] = "counter"


EVENTS_INGESTED = MetricSpec(
    "lifecycle_events_ingested",
    "Calls stored by the ingestion API (duplicates by messageId not counted).",
    ("type", "event"),
)
ENROLLMENTS_STARTED = MetricSpec(
    "lifecycle_enrollments_started",
    "Users who entered a journey (enrollment rows created).",
    ("journey", "group"),
)
SENDS = MetricSpec("lifecycle_sends", "Messages a provider accepted.", ("channel", "provider"))
SKIPS = MetricSpec("lifecycle_skips", "Sends the delivery policy skipped.", ("channel", "reason"))
DEFERRALS = MetricSpec(
    "lifecycle_deferrals",
    "Sends the delivery policy put off (quiet hours, caps, pauses); asked again later.",
    ("channel", "reason"),
)
SEND_FAILURES = MetricSpec(
    "lifecycle_send_failures",
    "Sends that failed: permanent provider refusals by reason, 'transient' for retried ones.",
    ("channel", "reason"),
)
PROVIDER_LATENCY = MetricSpec(
    "lifecycle_provider_latency_seconds",
    "Seconds a provider took to answer a send (accepted or refused).",
    ("channel", "provider"),
    kind="histogram",
)
EVENTS_REJECTED = MetricSpec(
    "lifecycle_events_rejected",
    "Calls put in the dead-letter table: refused by the API (stage=ingest) or parked by the "
    "router after repeated failures (stage=route).",
    ("stage",),
)
ALL_METRICS = (
    EVENTS_INGESTED,
    EVENTS_REJECTED,
    ENROLLMENTS_STARTED,
    SENDS,
    SKIPS,
    DEFERRALS,
    SEND_FAILURES,
    PROVIDER_LATENCY,
)
# Provider answers take from a few milliseconds (the outbox) to the provider timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
OTHER_EVENT = "other"


class _Named(Protocol):
    """What counting a stored call needs of it (a ``triggers.segment.Message``)."""

    @property
    def type(self) -> str: ...

    @property
    def message_id(self) -> str: ...

    @property
    def event(self) -> str | None: ...


@functools.cache
def _catalogued_events() -> frozenset[str]:
    from journeys.catalog import load_catalog

    return frozenset(load_catalog())


def event_label(message: _Named) -> str:
    """The ``event`` label of a call: a catalogued track event's name, ``other`` for a name
    the catalogue does not know (names come from clients: unbounded), empty otherwise."""
    if message.type != "track" or not message.event:
        return ""
    return message.event if message.event in _catalogued_events() else OTHER_EVENT


class Metrics:
    """What the engine counts. Subclasses decide where the numbers go."""

    def _add(self, spec: MetricSpec, labels: Labels, value: int = 1) -> None:
        raise NotImplementedError

    def _observe(self, spec: MetricSpec, labels: Labels, value: float) -> None:
        raise NotImplementedError

    def events_stored(self, messages: Iterable[_Named], stored: Collection[str]) -> None:
        """Count the calls of a request that were stored (``stored``: their message ids)."""
        seen: set[str] = set()
        for message in messages:
            if message.message_id in stored and message.message_id not in seen:
                seen.add(message.message_id)
                labels = {"type": message.type, "event": event_label(message)}
                self._add(EVENTS_INGESTED, labels)

    def events_rejected(self, stage: str, count: int = 1) -> None:
        """``count`` calls went to the dead-letter table at ``stage`` (``ingest``, ``route``)."""
        if count:
            self._add(EVENTS_REJECTED, {"stage": stage}, count)

    def enrollment_started(self, journey: str, group: str) -> None:
        """A user entered ``journey`` (in the ``treatment`` or ``holdout`` group, or
        ``global_control``: set aside from both)."""
        self._add(ENROLLMENTS_STARTED, {"journey": journey, "group": group})

    def sent(self, channel: str, provider: str) -> None:
        """A provider accepted a message."""
        self._add(SENDS, {"channel": channel, "provider": provider})

    def skipped(self, channel: str, reason: str) -> None:
        """The policy skipped a send for ``reason`` (``unsubscribed``, ``held_out``, ...)."""
        self._add(SKIPS, {"channel": channel, "reason": reason})

    def deferred(self, channel: str, reason: str) -> None:
        """The policy put a send off for ``reason`` (``quiet_hours``, ...)."""
        self._add(DEFERRALS, {"channel": channel, "reason": reason})

    def policy_outcome(self, channel: str, status: str, reason: str | None) -> None:
        """What the delivery policy decided instead of sending: ``skipped`` or
        ``deferred``, with its reason."""
        if status == "deferred":
            self.deferred(channel, reason or "")
        elif status == "skipped":
            self.skipped(channel, reason or "")

    def failed(self, channel: str, reason: str) -> None:
        """A send failed for ``reason`` (a provider refusal, ``template_error``, ...)."""
        self._add(SEND_FAILURES, {"channel": channel, "reason": reason})

    @contextmanager
    def provider_call(self, channel: str, provider: str) -> Iterator[None]:
        """Time the provider call inside the block (recorded even when it raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            self._observe(PROVIDER_LATENCY, {"channel": channel, "provider": provider}, elapsed)


class NullMetrics(Metrics):
    """Records nothing: the recorder of processes that serve no metrics."""

    def _add(self, spec: MetricSpec, labels: Labels, value: int = 1) -> None:
        pass

    def _observe(self, spec: MetricSpec, labels: Labels, value: float) -> None:
        pass


class TemporalMetrics(Metrics):
    """Metrics created through a Temporal runtime's meter: served by its Prometheus
    exporter beside the SDK's own metrics."""

    def __init__(self, meter: MetricMeter) -> None:
        self._instruments: dict[str, Any] = {}
        for spec in ALL_METRICS:
            if spec.kind == "histogram":
                self._instruments[spec.name] = meter.create_histogram_float(
                    spec.name, spec.help, "s"
                )
            else:
                self._instruments[spec.name] = meter.create_counter(spec.name, spec.help)

    def _add(self, spec: MetricSpec, labels: Labels, value: int = 1) -> None:
        self._instruments[spec.name].add(value, labels)

    def _observe(self, spec: MetricSpec, labels: Labels, value: float) -> None:
        self._instruments[spec.name].record(value, labels)


class PrometheusMetrics(Metrics):
    """Metrics in a ``prometheus_client`` registry of their own, with the process's CPU,
    memory and Python figures; :meth:`exposition` is what ``GET /metrics`` answers."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._instruments: dict[str, Any] = {}
        for spec in ALL_METRICS:
            if spec.kind == "histogram":
                self._instruments[spec.name] = Histogram(
                    spec.name,
                    spec.help,
                    spec.labels,
                    registry=self.registry,
                    buckets=LATENCY_BUCKETS,
                )
            else:
                self._instruments[spec.name] = Counter(
                    spec.name, spec.help, spec.labels, registry=self.registry
                )

    def _add(self, spec: MetricSpec, labels: Labels, value: int = 1) -> None:
        self._instruments[spec.name].labels(**labels).inc(value)

    def _observe(self, spec: MetricSpec, labels: Labels, value: float) -> None:
        self._instruments[spec.name].labels(**labels).observe(value)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


_recorder: Metrics = NullMetrics()


def metrics() -> Metrics:
    """The recorder this process installed (one that records nothing until then)."""
    return _recorder


def install_metrics(recorder: Metrics) -> Metrics:
    """Make ``recorder`` the process's recorder; returns the one it replaces."""
    global _recorder
    previous, _recorder = _recorder, recorder
    return previous


@contextmanager
def installed(recorder: Metrics) -> Iterator[Metrics]:
    """``with installed(recorder):`` the process records into it, then as before."""
    previous = install_metrics(recorder)
    try:
        yield recorder
    finally:
        install_metrics(previous)


def metrics_runtime(address: str) -> Runtime:
    """A Temporal runtime serving Prometheus metrics on ``address`` (``host:port``).

    The SDK core's own warnings go through Python logging (logger ``temporalio.core``), so
    they come out in the process's log format like every other line.

    Raises:
        ValueError: The address is malformed or already taken.
    """
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=LoggingConfig.default.filter,
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            ),
            metrics=PrometheusConfig(
                bind_address=address,
                counters_total_suffix=True,
                histogram_bucket_overrides={PROVIDER_LATENCY.name: LATENCY_BUCKETS},
            ),
        )
    )


def start_metrics_endpoint(address: str | None) -> Runtime | None:
    """Serve this process's metrics on ``address`` and record ours there.

    Returns the runtime to connect the Temporal client with (its workers' metrics go to the
    same endpoint), or None when ``address`` is empty or cannot be bound: a worker without
    its endpoint still sends messages, and says why once, as an error.
    """
    if not address:
        return None
    try:
        runtime = metrics_runtime(address)
    except ValueError as exc:
        log.error("metrics endpoint not started on %s: %s", address, exc)
        return None
    install_metrics(TemporalMetrics(runtime.metric_meter))
    log.info("metrics on http://%s/metrics", address, extra={"metrics_address": address})
    return runtime
