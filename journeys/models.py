"""The journey spec: what a marketer writes in YAML, as pydantic models.

Journeys are data; ``workflows.journey.JourneyWorkflow`` interprets any valid one. Fields
forbid extras, so a typo is a validation error naming the field, not a silent default.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from journeys.durations import Duration

SLUG = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ChannelName = Literal["sms", "email", "push"]
Topic = Literal["marketing", "transactional"]
Yuan = Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventTrigger(_Model):
    """Enter the journey when the platform sends this event."""

    event: str


class Goal(_Model):
    """Reaching ``event`` within ``within`` of entry converts the enrollment and ends the run."""

    event: str
    within: Duration


class _Step(_Model):
    id: str = Field(description="Unique within the journey; names the step in reports.")

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError("step ids are lower-case letters, digits and '_', e.g. 'day2_push'")
        return value


class SendStep(_Step):
    """Send one message, under the delivery policy, on one channel."""

    type: Literal["send"]
    channel: ChannelName
    template: str
    topic: Topic = "marketing"


class WaitStep(_Step):
    """Sleep on a durable timer (ends early if the goal or an exit event arrives)."""

    type: Literal["wait"]
    duration: Duration


class IssueCouponStep(_Step):
    """Issue a coupon, e.g. 满50减20: ``amount: 20``, ``min_spend: 50``, ``valid_for: 7d``."""

    type: Literal["issue_coupon"]
    amount: Yuan
    min_spend: Yuan = Decimal(0)
    valid_for: Duration


class ExitStep(_Step):
    """End the run here."""

    type: Literal["exit"]


Step = Annotated[SendStep | WaitStep | IssueCouponStep | ExitStep, Field(discriminator="type")]


class Journey(_Model):
    """One lifecycle journey."""

    id: str
    name: str
    description: str = ""
    trigger: EventTrigger
    goal: Goal | None = None
    exit_on: list[str] = Field(default_factory=list)
    holdout: float = Field(default=0, ge=0, le=50, description="Percent of entrants held out.")
    re_entry: Literal["never"] = "never"
    steps: list[Step] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError("journey ids are lower-case letters, digits and '_'")
        return value

    @model_validator(mode="after")
    def _unique_step_ids(self) -> Journey:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice; step ids must be unique")
            seen.add(step.id)
        return self

    def concerns(self, event: str) -> bool:
        """Whether a running enrollment must hear about ``event`` (goal or exit)."""
        return (self.goal is not None and self.goal.event == event) or event in self.exit_on
