"""Fixtures of the console tests: a client, and a logged-in client with its CSRF token."""

from __future__ import annotations

import pytest
from console_support import console_client, log_in
from fastapi.testclient import TestClient


@pytest.fixture
def http(db) -> TestClient:
    return console_client(db)


@pytest.fixture
def admin(http) -> tuple[TestClient, str]:
    """A logged-in client and its session's CSRF token."""
    return http, log_in(http)
