"""Enrollment bookkeeping: how and when a run ended."""

from __future__ import annotations

from temporalio import activity

from store.db import SessionFactory, transaction
from store.journey_runs import EjectedRun, record_ejections
from store.models import Enrollment
from workflows.journey_contracts import FINISH_ENROLLMENT, FinishEnrollmentInput


class EnrollmentActivities:
    def __init__(self, factory: SessionFactory):
        self._factory = factory

    @activity.defn(name=FINISH_ENROLLMENT)
    def finish_enrollment(self, inp: FinishEnrollmentInput) -> None:
        """Mark the enrollment exited (and converted); a repeat leaves the first record."""
        with transaction(self._factory) as session:
            row = session.get(Enrollment, inp.enrollment_id, with_for_update=True)
            if row is None or row.exited_at is not None:
                return
            row.exited_at = inp.now
            row.exit_reason = inp.reason
            if inp.converted_at is not None:
                row.converted_at = inp.converted_at
            if inp.ejected is not None:
                record_ejections(
                    session,
                    journey_id=row.journey_id,
                    runs=[EjectedRun(row.id, row.user_id, inp.ejected_at_step or None)],
                    actor=inp.ejected.actor,
                    reason=inp.ejected.reason,
                    now=inp.now,
                )
