"""The behaviour model of a simulated population, and reading a marketer's overrides (YAML).

Every day each user who has signed up may visit the app, add to a cart and order, each with
its own daily probability. For ``lift.days`` days after a message reaches a user, those
probabilities are multiplied by ``lift.factor``: the effect a journey is meant to have, which
the holdout group never gets. A behaviour file overrides any part of the defaults::

    daily:
      visit: 0.3          # chance per day that a user opens the app
      add_to_cart: 0.06   # ... adds to (or changes) a cart
      order: 0.03         # ... places an order
      coupon: 0.01        # ... receives a coupon from a platform campaign
    lift:
      factor: 2.5         # probabilities x2.5 ...
      days: 2             # ... for 2 days after a message arrives
    population:
      new: 0.4            # share who sign up during the simulation
      dormant: 0.25       # share of existing users not seen for 20-60 days
      dormant_visit: 0.1  # a dormant user's chances, as a share of an active one's
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from journeys.validate import Problem, _line_for, _line_index


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Daily(_Model):
    """Chances per user and day, before any lift."""

    visit: float = Field(default=0.3, ge=0, le=1)
    add_to_cart: float = Field(default=0.06, ge=0, le=1)
    order: float = Field(default=0.03, ge=0, le=1)
    coupon: float = Field(default=0.01, ge=0, le=1)


class Lift(_Model):
    """What a message does: the daily chances multiplied by ``factor`` for ``days`` days."""

    factor: float = Field(default=2.0, ge=1, le=100)
    days: float = Field(default=2, ge=0, le=60)


class Population(_Model):
    """Who the users are: newcomers who sign up during the run, dormant and active ones."""

    new: float = Field(default=0.4, ge=0, le=1)
    dormant: float = Field(default=0.25, ge=0, le=1)
    dormant_visit: float = Field(default=0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _shares(self) -> Population:
        if self.new + self.dormant > 1:
            raise ValueError("dormant: new + dormant must be at most 1 (the rest are active)")
        return self


class Behaviour(_Model):
    daily: Daily = Daily()
    lift: Lift = Lift()
    population: Population = Population()

    def chance(self, base: float, *, lifted: bool) -> float:
        """A daily chance, multiplied by the lift while a recent message works on the user."""
        return min(1.0, base * self.lift.factor) if lifted else base


class BehaviourError(ValueError):
    """A behaviour file that cannot be used: one line naming the file, line and field."""


def load_behaviour(path: Path | str | None) -> Behaviour:
    """The default model, with the overrides of the YAML file at ``path`` (if any)."""
    if path is None:
        return Behaviour()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BehaviourError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_behaviour(text, file=str(path))


def parse_behaviour(text: str, *, file: str = "<behaviour>") -> Behaviour:
    """Parse behaviour YAML, or raise :class:`BehaviourError` naming the field."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BehaviourError(
            str(Problem(file, mark.line + 1 if mark else None, "", f"not valid YAML: {what}"))
        ) from None
    if data is None:
        return Behaviour()
    if not isinstance(data, dict) or root is None:
        raise BehaviourError(
            str(Problem(file, 1, "", "a behaviour file is a mapping (daily, lift, population)"))
        )
    lines: dict[tuple[Any, ...], int] = {}
    _line_index(root, (), lines)
    try:
        return Behaviour.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "value_error" and ": " in message:  # a validator naming its field
            name, message = message.split(": ", 1)
            loc = (*loc, name)
        if err["type"] == "extra_forbidden":
            message = "unknown field; see `lifecycle simulate --help` for the model's fields"
        field = ".".join(str(p) for p in loc)
        raise BehaviourError(str(Problem(file, _line_for(lines, loc), field, message))) from None
