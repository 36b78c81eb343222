"""The journey spec: what a marketer writes in YAML, as pydantic models.

Journeys are data; ``workflows.journey.JourneyWorkflow`` interprets any valid one. Fields
forbid extras, so a typo is a validation error naming the field, not a silent default.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

import kinds
from journeys.conditions import check_filter
from journeys.durations import Duration, parse_duration

SLUG = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _registered_kind(value: object) -> object:
    # Checked before the string type, so any value that names no kind (a number too) is
    # told the kinds, as a Literal of them would say it: "'sms', 'email' or 'push'".
    if not kinds.is_kind(value):
        quoted = [repr(name) for name in kinds.names()]
        expected = " or ".join(filter(None, (", ".join(quoted[:-1]), quoted[-1])))
        raise PydanticCustomError(
            "literal_error", "Input should be {expected}", {"expected": expected}
        )
    return value


class _KindNames:
    """The JSON Schema of a channel's name: an ``enum`` of the kinds registered when the
    schema is written (``lifecycle journeys schema``)."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), "enum": list(kinds.names())}


# A channel kind's name, as the kinds registry knows them (a kind a test registers too).
ChannelName = Annotated[str, BeforeValidator(_registered_kind), _KindNames()]
Topic = Literal["marketing", "transactional"]
Yuan = Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _where(value: dict[str, Any]) -> dict[str, Any]:
    check_filter(value)
    return value


Where = Annotated[dict[str, Any], AfterValidator(_where)]


class Schedule(_Model):
    """Enter the members of an audience on a schedule (run by the scheduler's sweeps)."""

    cron: str
    timezone: str = "Asia/Shanghai"
    audience: str | dict[str, Any]


class Trigger(_Model):
    """What starts a run: an event (optionally filtered, optionally keyed) or a schedule.

    ``key`` names an event property that makes one run per value (one cart-abandonment run
    per ``cart_id``); ``on_repeat`` says what a repeated trigger does to a running run:
    ``restart`` its steps (and timers) with the new trigger, or ``ignore`` it.
    """

    event: str | None = None
    where: Where = Field(default_factory=dict)
    key: str | None = None
    on_repeat: Literal["restart", "ignore"] = "ignore"
    schedule: Schedule | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        if (self.event is None) == (self.schedule is None):
            raise ValueError("a trigger is either `event` or `schedule`")
        return self


class Goal(_Model):
    """Reaching ``event`` (or any of a list) within ``within`` of entry converts the
    enrollment and ends the run."""

    event: str | list[str]
    within: Duration
    where: Where = Field(default_factory=dict)

    def events(self) -> list[str]:
        return [self.event] if isinstance(self.event, str) else list(self.event)


class ReEntryAfter(_Model):
    after: Duration


class _Step(_Model):
    id: str = Field(description="Unique within the journey; names the step in reports.")

    # The lists of nested steps this type holds, in document order: (key in YAML, field).
    NESTED: ClassVar[tuple[tuple[str, str], ...]] = ()

    def child_lists(self) -> list[tuple[str, list[Step]]]:
        """Each list of nested steps with its key in YAML (``then``, ``on_timeout``...)."""
        return [(key, getattr(self, name)) for key, name in self.NESTED]

    def children(self) -> list[Step]:
        """The nested steps, in document order (none for most step types)."""
        return [step for _, steps in self.child_lists() for step in steps]

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError("step ids are lower-case letters, digits and '_', e.g. 'day2_push'")
        return value


class Variant(_Model):
    id: str
    template: str
    weight: int = Field(default=1, ge=1)


class SendStep(_Step):
    """Send one message, under the delivery policy, on one channel.

    ``variants`` (A/B) replace ``template``: each user gets one, chosen deterministically by
    weight. ``fallback`` is the channel to try when the user is unreachable on ``channel``.
    """

    type: Literal["send"]
    channel: ChannelName
    template: str | None = None
    variants: list[Variant] | None = None
    fallback: ChannelName | None = None
    fallback_template: str | None = None
    topic: Topic = "marketing"

    @model_validator(mode="after")
    def _template_or_variants(self) -> SendStep:
        # "field: message" lets validation name the field (see journeys/validate.py).
        if self.template is None and not self.variants:
            raise ValueError("template: Field required")
        if self.template is not None and self.variants:
            raise ValueError("variants: give either `template` or `variants`, not both")
        if self.fallback is not None and self.fallback_template is None:
            raise ValueError("fallback_template: Field required when `fallback` is given")
        return self

    def templates(self) -> list[tuple[str, ChannelName]]:
        """Every template this step may send, with its channel (variants, then fallback)."""
        main = [self.template] if self.template else [v.template for v in self.variants or []]
        found = [(name, self.channel) for name in main]
        if self.fallback is not None and self.fallback_template is not None:
            found.append((self.fallback_template, self.fallback))
        return found


class WaitStep(_Step):
    """Sleep on a durable timer (ends early if the goal or an exit event arrives)."""

    type: Literal["wait"]
    duration: Duration


INSTANT = re.compile(
    r"^(?P<ref>trigger\.timestamp|coupon\.expires_at|trigger\.properties\.\w+)"
    r"\s*(?:(?P<sign>[+-])\s*(?P<offset>\w+))?$"
)
LOCAL_TIME = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")


class WaitUntilStep(_Step):
    """Sleep until an instant computed from the run's context.

    ``at: coupon.expires_at - 48h`` | ``at: trigger.timestamp + 1d`` |
    ``at: trigger.properties.expires_at - 6h`` | ``local_time: "10:00"`` (the next 10:00 in
    the user's timezone). An instant already past does not wait.
    """

    type: Literal["wait_until"]
    at: str | None = None
    local_time: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> WaitUntilStep:
        if (self.at is None) == (self.local_time is None):
            raise ValueError("give either `at` (e.g. 'coupon.expires_at - 48h') or `local_time`")
        if self.at is not None:
            match = INSTANT.match(self.at.strip())
            if not match:
                raise ValueError(
                    f"cannot read {self.at!r}: write trigger.timestamp, coupon.expires_at or "
                    "trigger.properties.NAME, optionally + or - a duration, e.g. "
                    "'coupon.expires_at - 48h'"
                )
            if match["offset"]:
                parse_duration(match["offset"])
        if self.local_time is not None and not LOCAL_TIME.match(self.local_time):
            raise ValueError(f"local_time {self.local_time!r} is not HH:MM, e.g. '10:00'")
        return self

    def parts(self) -> tuple[str, timedelta]:
        """The reference and the signed offset of ``at``."""
        assert self.at is not None
        match = INSTANT.match(self.at.strip())
        assert match is not None
        offset = parse_duration(match["offset"]) if match["offset"] else timedelta(0)
        return match["ref"], -offset if match["sign"] == "-" else offset


class IssueCouponStep(_Step):
    """Issue a coupon, e.g. 满50减20: ``amount: 20``, ``min_spend: 50``, ``valid_for: 7d``."""

    type: Literal["issue_coupon"]
    amount: Yuan
    min_spend: Yuan = Decimal(0)
    valid_for: Duration


class ExitStep(_Step):
    """End the run here."""

    type: Literal["exit"]


class WaitForStep(_Step):
    """Wait for an event of this user (optionally matching ``where``) up to ``timeout``.

    An event that arrived earlier in the run, and was not used by an earlier ``wait_for``,
    counts: nothing is lost between steps.
    """

    type: Literal["wait_for"]
    NESTED = (("on_event", "on_event"), ("on_timeout", "on_timeout"))
    event: str
    where: Where = Field(default_factory=dict)
    timeout: Duration
    on_event: list[Step] = Field(default_factory=list)
    on_timeout: list[Step] = Field(default_factory=list)


ContextOp = Literal["eq", "ne", "gt", "gte", "lt", "lte", "exists"]
CONTEXT_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "exists")


class ContextCondition(_Model):
    """A condition on the run's context: ``{context: trigger.properties.low_stock, eq: true}``.

    Written with the operator as the key; held as ``op`` and ``value``.
    """

    context: str
    op: ContextOp
    value: Any = None

    @model_validator(mode="before")
    @classmethod
    def _operator_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "op" not in data:
            ops = [k for k in data if k in CONTEXT_OPS]
            if len(ops) != 1:
                raise ValueError("give exactly one operator: eq, ne, gt, gte, lt, lte or exists")
            data = {k: v for k, v in data.items() if k != ops[0]} | {
                "op": ops[0],
                "value": data[ops[0]],
            }
        return data

    @model_validator(mode="after")
    def _readable(self) -> ContextCondition:
        if not re.match(r"^(trigger\.(event|properties\.\w+)|coupon\.\w+)$", self.context):
            raise ValueError(
                f"cannot read context {self.context!r}: use trigger.properties.NAME, "
                "trigger.event or coupon.NAME"
            )
        if self.op == "exists" and not isinstance(self.value, bool):
            raise ValueError("`exists` takes true or false")
        return self


class AudienceCondition(_Model):
    """An audience rule evaluated for this user now (see ``audiences/rules.py``)."""

    audience: dict[str, Any]


class BranchStep(_Step):
    """``if`` the condition holds run ``then``, else ``else``; then continue after the branch."""

    type: Literal["branch"]
    NESTED = (("then", "then"), ("else", "else_"))
    if_: ContextCondition | AudienceCondition = Field(alias="if")
    then: list[Step] = Field(default_factory=list)
    else_: list[Step] = Field(default_factory=list, alias="else")


# The step types: a closed set. A ``match`` over them ends in ``case _: assert_never(step)``,
# so a new type is a type error wherever it is not handled.
AnyStep = (
    SendStep | WaitStep | WaitUntilStep | WaitForStep | BranchStep | IssueCouponStep | ExitStep
)
Step = Annotated[AnyStep, Field(discriminator="type")]
STEP_MODELS: tuple[type[_Step], ...] = get_args(AnyStep)
STEP_TYPES: tuple[str, ...] = tuple(
    get_args(model.model_fields["type"].annotation)[0] for model in STEP_MODELS
)
# The keys under which a journey holds lists of steps: its own, and each nested one.
STEP_LIST_KEYS: tuple[str, ...] = (
    "steps",
    *dict.fromkeys(key for model in STEP_MODELS for key, _ in model.NESTED),
)


def walk(steps: list[Step]) -> Iterator[Step]:
    """Every step, nested ones included, in document order."""
    for step in steps:
        yield step
        for _, nested in step.child_lists():
            yield from walk(nested)


class DeliveryOverrides(_Model):
    """This journey's exceptions to the delivery policy in settings."""

    quiet_hours: str | None = Field(
        default=None, description='"HH:MM-HH:MM" in the user\'s timezone, or "off".'
    )
    on_frequency_cap: Literal["skip", "defer"] = "skip"

    @field_validator("quiet_hours")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is None or value == "off":
            return value
        if not re.fullmatch(r"(?:[01]\d|2[0-3]):[0-5]\d-(?:[01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError('write quiet hours as HH:MM-HH:MM, e.g. "22:00-07:00", or "off"')
        return value


class Journey(_Model):
    """One lifecycle journey."""

    id: str
    name: str
    description: str = ""
    trigger: Trigger
    entry: dict[str, Any] | None = Field(
        default=None, description="An audience rule checked when a user would enter."
    )
    goal: Goal | None = None
    exit_on: list[str] = Field(default_factory=list)
    holdout: float = Field(default=0, ge=0, le=50, description="Percent of entrants held out.")
    re_entry: Literal["never", "always"] | ReEntryAfter = "never"
    delivery: DeliveryOverrides = Field(default_factory=DeliveryOverrides)
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
        for step in walk(self.steps):
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice; step ids must be unique")
            seen.add(step.id)
        return self

    def listens_for(self) -> set[str]:
        """Events a running enrollment must hear about: goal, exits, waits, restarts."""
        events = set(self.exit_on)
        if self.goal is not None:
            events.update(self.goal.events())
        events.update(s.event for s in walk(self.steps) if isinstance(s, WaitForStep))
        if self.trigger.event is not None and self.trigger.on_repeat == "restart":
            events.add(self.trigger.event)
        return events

    def concerns(self, event: str) -> bool:
        """Whether a running enrollment must hear about ``event``."""
        return event in self.listens_for()


for _model in (WaitForStep, BranchStep, Journey):
    _model.model_rebuild()
