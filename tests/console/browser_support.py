"""What the console's browser tests share: headless Chromium (Debian's ``chromium``) driven by
Playwright, the API process (uvicorn, as ``lifecycle api`` runs it) on 127.0.0.1, logging in,
and the screenshot of each page visited, kept as a test artifact.

The browser tests are skipped when Chromium or Playwright is missing, unless
LIFECYCLE_REQUIRE_BROWSER=1 (CI). Screenshots go to ``$LIFECYCLE_TEST_ARTIFACTS``
(default ``test-artifacts/`` at the repository's root), under ``screenshots/<test>/``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from console_support import TOKEN

from support import assert_eventually, fail_if_exited

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]


def browser_or_skip() -> None:
    """Skip the test without Chromium or Playwright; fail it instead when they are required."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (pip install -e '.[dev]')"
    if missing and os.environ.get("LIFECYCLE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"the browser test is required: {missing}")
    if missing:
        pytest.skip(missing)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_process(env: Mapping[str, str], *, cwd: Path | None = None) -> Iterator[str]:
    """The API process (uvicorn ``api.server:app_from_env``) configured by ``env``, on a
    free port; yields its base URL once it listens, stops it afterwards."""
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "uvicorn", "--factory", "api.server:app_from_env",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=dict(env),
        cwd=cwd,
    )  # fmt: skip
    try:

        def listening() -> bool:
            fail_if_exited(proc)
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True

        assert_eventually(
            listening, timeout=30, interval=0.1, message="the API listening", retry_on=(OSError,)
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def server(sqlite_db, tmp_path: Path) -> Iterator[str]:
    """The API process on the test's database (no Temporal worker behind it)."""
    browser_or_skip()
    env = os.environ | {
        "LIFECYCLE_ENVIRONMENT": "development",
        "LIFECYCLE_DATABASE_URL": sqlite_db.url,
        "LIFECYCLE_ADMIN_TOKEN": TOKEN,
        "LIFECYCLE_DATA_DIR": str(tmp_path / "data"),
    }
    with api_process(env) as url:
        yield url


def artifacts_dir() -> Path:
    """Where tests keep what a person may want to look at afterwards."""
    return Path(os.environ.get("LIFECYCLE_TEST_ARTIFACTS") or ROOT / "test-artifacts")


class Screenshots:
    """Full-page screenshots of one test's pages, numbered in the order taken:
    ``<artifacts>/screenshots/<test>/<nn>-<name>.png``. The test's earlier ones go first."""

    def __init__(self, page: Page, test: str):
        self.page = page
        self.folder = artifacts_dir() / "screenshots" / re.sub(r"[^\w.-]+", "_", test)
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("*.png"):
            old.unlink()
        self.taken = 0

    def take(self, name: str) -> Path:
        self.taken += 1
        path = self.folder / f"{self.taken:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def chromium_page() -> Iterator[tuple[Page, list[str]]]:
    """A fresh page of headless Chromium, and the errors its console and scripts report."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            yield page, problems
        finally:
            browser.close()


def log_in(page: Page, server: str) -> None:
    """Log in to the console with the test's admin token; lands on the journeys list."""
    page.goto(f"{server}/console/login")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/console/journeys")
