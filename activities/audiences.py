"""Audience checks for a running journey (``branch`` on an audience rule)."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from audiences.audience import audience_from_data
from audiences.rules import AudienceError
from store.db import SessionFactory
from workflows.journey_contracts import IN_AUDIENCE, AudienceCheckInput


class AudienceActivities:
    def __init__(self, factory: SessionFactory):
        self._factory = factory

    @activity.defn(name=IN_AUDIENCE)
    def in_audience(self, inp: AudienceCheckInput) -> bool:
        """Whether the user matches the rule at ``inp.now`` (one indexed query)."""
        try:
            audience = audience_from_data(inp.rule, source="branch")
        except AudienceError as exc:  # validation should have caught it: do not retry
            raise ApplicationError(str(exc), type="BadAudienceRule", non_retryable=True) from exc
        with self._factory() as session:
            return audience.contains(session, user_id=inp.user_id, now=inp.now)
