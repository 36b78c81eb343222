"""A sample render context, shaped like the one the engine passes, for checking templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def sample_context() -> dict[str, Any]:
    """A realistic context for the new-user coupon journey's templates.

    Returns:
        ``user``, ``coupon``, ``trigger`` and ``unsubscribe_url``, as the engine passes them.
    """
    signed_up = datetime(2025, 3, 2, 2, 15, tzinfo=UTC)
    return {
        "user": {
            "id": "u_1001",
            "name": "王小明",
            "member_tier": None,
            "locale": "zh-CN",
            "timezone": "Asia/Shanghai",
        },
        "coupon": {
            "code": "NEW20-7KQ9",
            "amount_fen": 2000,
            "min_spend_fen": 5000,
            "expires_at": signed_up + timedelta(days=7),
        },
        "trigger": {
            "event": "Signed Up",
            "properties": {"method": "phone"},
            "timestamp": signed_up,
        },
        "unsubscribe_url": "https://example.com/unsubscribe?token=sample",
    }
