"""When an event happened: the device's clock corrected as Segment does, and replaced by the
receive time when it is out of bounds."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from triggers.segment.calls import FAR_FUTURE, FAR_PAST, Call, Limits


def event_time(
    *,
    timestamp: datetime | None,
    original_timestamp: datetime | None,
    sent_at: datetime | None,
    received_at: datetime,
) -> datetime:
    """When the event happened, corrected for the device's clock the way Segment does.

    A device clock that is off shifts both its ``timestamp`` and its ``sentAt`` by the same
    amount, so ``received_at - (sentAt - timestamp)`` is the event's time on our clock.
    Raises ``OverflowError`` when the correction leaves the calendar.
    """
    device_time = timestamp or original_timestamp
    if device_time is None:
        return received_at
    if sent_at is None:
        return device_time
    return received_at - (sent_at - device_time)


def checked_time(
    call: Call,
    data: Mapping[str, Any],
    *,
    base_sent_at: datetime | None,
    received_at: datetime,
    limits: Limits,
) -> tuple[datetime, dict[str, Any] | None]:
    """The event's time, and the flag to keep in its context when it had to be replaced."""
    sent_at = call.sent_at or base_sent_at
    try:
        ts = event_time(
            timestamp=call.timestamp,
            original_timestamp=call.original_timestamp,
            sent_at=sent_at,
            received_at=received_at,
        )
    except OverflowError:  # the skew correction left the calendar, one way or the other
        device_time = call.timestamp or call.original_timestamp
        assert sent_at is not None and device_time is not None
        ts = FAR_PAST if sent_at > device_time else FAR_FUTURE
    if ts > received_at + limits.max_future_skew:
        why = f"more than {limits.max_future_skew} ahead of the time it was received"
    elif ts < limits.earliest:
        why = f"before {limits.earliest.date().isoformat()}"
    else:
        return ts, None
    sent = {
        name: data[name]
        for name in ("timestamp", "originalTimestamp", "sentAt")
        if isinstance(data.get(name), str)
    }
    return received_at, {"reason": f"the event time was {why}", **sent}
