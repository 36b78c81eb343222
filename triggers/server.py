"""Where the API process was built before it had a room of its own (:mod:`api.server`).

``uvicorn --factory triggers.server:app_from_env`` keeps working, and so do the imports below.
"""

from __future__ import annotations

from api.hosts import BrowserHostCheck, allowed_hosts
from api.server import app_from_env, build_app
from triggers.connecting import ConnectingRouter

__all__ = ["BrowserHostCheck", "ConnectingRouter", "allowed_hosts", "app_from_env", "build_app"]
