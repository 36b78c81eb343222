"""Starting, signalling and ending journey runs in Temporal."""

from __future__ import annotations

from dataclasses import replace

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from enrollment.entries import Entry
from enrollment.judging import Target
from journeys.models import Journey
from journeys.used_properties import UsedProperties
from workflows.journey import JourneyWorkflow
from workflows.journey_contracts import EventSignal, JourneyInput

# The run's event signal, by the name ``start_workflow`` takes for a signal sent with the start.
SIGNAL = "event"


class JourneyRuns:
    """The journey runs on one task queue, reached through one Temporal client."""

    def __init__(
        self,
        *,
        client: Client,
        task_queue: str,
        history_limit: int,
    ) -> None:
        self._client = client
        self._task_queue = task_queue
        self._history_limit = history_limit

    async def start(
        self,
        journey: Journey,
        version: int,
        user_id: str,
        entry: Entry,
        signal: EventSignal,
        uses: UsedProperties,
    ) -> None:
        """Start the run of ``entry`` (signal-with-start for an event-triggered journey);
        a run of the same id already going is kept and hears the trigger. The run is told
        whether its user was in the global control group when the entry was recorded (its
        coupons are withheld)."""
        # Only what the journey uses enters the run's history; the rest stays in the events
        # table, which erasure reaches.
        signal = replace(signal, properties=uses.of_trigger(signal.properties))
        inp = JourneyInput(
            journey=journey,
            journey_version=version,
            enrollment_id=entry.enrollment_id,
            user_id=user_id,
            group=entry.group,
            trigger=signal,
            entry_key=entry.key,
            entry_number=entry.number,
            history_limit=self._history_limit,
            global_control=entry.global_control,
        )
        try:
            await self._client.start_workflow(
                JourneyWorkflow.run,
                inp,
                id=entry.workflow_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                # A schedule-triggered run has its trigger in its input; an event-triggered one
                # also gets it as a signal, so a run already going (a restart) hears it.
                start_signal=SIGNAL if journey.trigger.event is not None else None,
                start_signal_args=[signal] if journey.trigger.event is not None else [],
            )
        except WorkflowAlreadyStartedError:
            pass  # the run closed already; the enrollment row says how

    async def signal(self, targets: list[Target], signal: EventSignal) -> None:
        """Signal each target run; one that has closed already is passed by."""
        for wid, uses in targets:
            # Each run hears only the properties its journey uses.
            heard = replace(signal, properties=uses.of_signal(signal.event, signal.properties))
            try:
                await self._client.get_workflow_handle(wid).signal(JourneyWorkflow.event, heard)
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise  # transient: the API answers 503 and the client retries

    async def end(self, workflow_ids: list[str], *, reason: str) -> None:
        """Terminate running journeys; ones already closed are fine."""
        for wid in workflow_ids:
            try:
                await self._client.get_workflow_handle(wid).terminate(reason=reason)
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
