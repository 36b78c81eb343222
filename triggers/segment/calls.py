"""Segment's calls as pydantic models, and what a judged call becomes: a :class:`Message` to
store or a :class:`Refusal` to keep aside, within the :class:`Limits` of the edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    from config import Settings

MessageType = Literal["identify", "track", "page", "screen", "group", "alias"]
MESSAGE_TYPES: tuple[MessageType, ...] = ("identify", "track", "page", "screen", "group", "alias")

# Column widths in store.models: longer values would fail the insert on PostgreSQL.
_Id = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=255)]


class PayloadError(Exception):
    """A request the API refuses, with the HTTP status and the field at fault (if known)."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status

    def body(self) -> dict[str, str]:
        """The JSON error body: ``{"error": ..., "field": ...}``."""
        out = {"error": self.message}
        if self.field:
            out["field"] = self.field
        return out


def _parse_instant(value: Any) -> datetime | None:
    """An ISO-8601 string as an aware UTC datetime; a naive one is taken as UTC."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise PydanticCustomError("iso_datetime", "must be an ISO-8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PydanticCustomError(
            "iso_datetime", "must be an ISO-8601 date-time, e.g. 2024-05-01T10:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00, 9999-12-31T23:59-01:00: off the calendar
        return FAR_PAST if parsed.year == 1 else FAR_FUTURE


FAR_PAST = datetime.min.replace(tzinfo=UTC)
FAR_FUTURE = datetime.max.replace(tzinfo=UTC)

Instant = Annotated[datetime | None, PlainValidator(_parse_instant)]
JSONObject = dict[str, Any] | None


class Call(BaseModel):
    """Fields every call may carry. Extra fields are ignored, never fatal."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    user_id: _Id | None = Field(default=None, alias="userId")
    anonymous_id: _Id | None = Field(default=None, alias="anonymousId")
    message_id: _Id | None = Field(default=None, alias="messageId")
    context: JSONObject = None
    integrations: Any = None  # not used here; never a reason to refuse a call
    timestamp: Instant = None
    original_timestamp: Instant = Field(default=None, alias="originalTimestamp")
    sent_at: Instant = Field(default=None, alias="sentAt")


class TrackCall(Call):
    event: _Id
    properties: JSONObject = None


class IdentifyCall(Call):
    traits: JSONObject = None


class PageCall(Call):
    """``page`` and ``screen``: stored with their ``name``, nothing acts on them yet."""

    name: Any = None
    properties: JSONObject = None


class GroupCall(Call):
    group_id: Any = Field(default=None, alias="groupId")
    traits: JSONObject = None


class AliasCall(Call):
    previous_id: Any = Field(default=None, alias="previousId")


MODELS: dict[str, type[Call]] = {
    "identify": IdentifyCall,
    "track": TrackCall,
    "page": PageCall,
    "screen": PageCall,
    "group": GroupCall,
    "alias": AliasCall,
}


class BatchEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    batch: list[Any]
    context: JSONObject = None
    sent_at: Instant = Field(default=None, alias="sentAt")


@dataclass(frozen=True)
class Message:
    """One call, normalised: what the ``events`` row and the profile upsert need.

    ``timestamp`` is the event's instant after clock-skew correction; ``traits`` are the
    identify traits (empty for other calls). For ``identify`` and ``group`` the traits are also
    kept in ``properties``; ``page``/``screen`` store their name as ``event``; ``alias`` keeps
    ``previousId`` and ``group`` keeps ``groupId`` in ``properties``.
    """

    type: MessageType
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    event: str | None
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]
    timestamp: datetime
    received_at: datetime


def _phrase(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "string_type":
        return "must be a string"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "dict_type":
        return "must be a JSON object"
    if kind == "list_type":
        return "must be a JSON array"
    if kind == "iso_datetime":
        return str(err["msg"])
    return f"is invalid ({err['msg']})"


def field_path(prefix: str, loc: tuple[Any, ...]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def validate(model: type[BaseModel], data: Any, prefix: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        path = field_path(prefix, tuple(err["loc"]))
        raise PayloadError(f"{path} {_phrase(err)}.", field=path) from None


@dataclass(frozen=True)
class Limits:
    """What the API accepts per call (see ``Settings`` for the defaults and their reasons)."""

    max_message_bytes: int | None = 32 * 1024
    max_depth: int = 32
    max_future_skew: timedelta = timedelta(hours=1)
    earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)


DEFAULT_LIMITS = Limits()


def limits_of(settings: Settings) -> Limits:
    """The per-call limits the API enforces, from settings."""
    return Limits(
        max_message_bytes=settings.max_message_bytes,
        max_depth=settings.max_json_depth,
        max_future_skew=settings.max_future_skew,
        earliest=settings.earliest_event_time,
    )


@dataclass(frozen=True)
class Refusal:
    """One call the API refused: kept raw, with the field at fault and why."""

    index: int | None  # position in the batch; None for a single call
    message_id: str | None
    field: str | None
    reason: str
    raw: str  # the call as ASCII JSON: storable whatever it contains

    def body(self) -> dict[str, Any]:
        """The entry in the API's ``refused`` list."""
        out: dict[str, Any] = {"index": self.index, "messageId": self.message_id}
        if self.field:
            out["field"] = self.field
        out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class Parsed:
    """A batch judged item by item: the calls to store and the ones refused."""

    messages: list[Message] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
