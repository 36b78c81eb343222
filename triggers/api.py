"""Where the HTTP API was built before it had a room of its own (:mod:`api.app`); the names
below keep being importable from here."""

from __future__ import annotations

from api.app import create_app
from api.deps import check_write_key
from triggers.segment import limits_of

__all__ = ["check_write_key", "create_app", "limits_of"]
