"""What ``bench/journeys.py`` and ``bench/latency.py`` share: the dev server on its on-disk
store (as ``lifecycle dev`` starts it), a database with the shipped journeys published, the
processes' environment (quiet hours and caps off), signed-up users with a phone, and CPU
per process from ``/proc``.

Imported first by those scripts: a script's own folder comes first on ``sys.path``, where
``bench/journeys.py`` would hide the ``journeys`` package; this puts the project root first
and the bench and test folders last.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))
for extra in (_HERE.parent / "tests", _HERE):
    if str(extra) not in sys.path:
        sys.path.append(str(extra))

import chaos_parts  # noqa: E402, F401 - first: it takes bench/ off the path again, so put it back

if str(_HERE) not in sys.path:
    sys.path.append(str(_HERE))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from chaos_kill_worker import WorkerProcess, free_port  # noqa: E402
from ingest import ROOT, cpu_seconds, database, machine_busy_seconds  # noqa: E402
from ingest import process_env as ingest_env  # noqa: E402

from config import Settings, package_binary  # noqa: E402
from devstack.stack import _wait_for_port, prepare_database  # noqa: E402
from store.db import make_engine  # noqa: E402
from store.models import User  # noqa: E402

__all__ = ["ROOT", "WorkerProcess", "cpu_seconds", "database", "machine_busy_seconds"]

WRITE_KEY = "dev-write-key"


@contextmanager
def temporal_on_disk(workdir: Path) -> Iterator[tuple[str, int]]:
    """``temporal server start-dev`` on a SQLite file in WAL mode (``lifecycle dev``'s store);
    yields its address and pid."""
    port = free_port()
    log = (workdir / "temporal.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - our own binary and arguments
        [
            str(package_binary("temporal")), "server", "start-dev",
            "--ip", "127.0.0.1", "--port", str(port), "--ui-port", str(free_port()),
            "--headless", "--log-level", "warn",
            "--db-filename", str(workdir / "temporal.db"),
            "--sqlite-pragma", "journal_mode=wal",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_for_port("127.0.0.1", port, 60, proc)
        yield f"127.0.0.1:{port}", proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def publish_shipped(url: str) -> None:
    """Publish every shipped journey, as ``lifecycle dev`` does."""
    prepare_database(Settings(database_url=url))


def process_env(url: str, address: str, workdir: Path, task_queue: str) -> dict[str, str]:
    """The API's and the worker's environment: quiet hours and frequency caps off."""
    env = ingest_env(url, address, workdir, task_queue)
    env.update(
        LIFECYCLE_QUIET_HOURS="off",
        LIFECYCLE_CAP_SMS_PER_DAY="0",
        LIFECYCLE_CAP_MARKETING_PER_WEEK="0",
    )
    return env


def phone(number: int) -> str:
    """The ``number``-th user's phone, E.164."""
    return f"+86138{number % 100_000_000:08d}"


def add_users(url: str, user_ids: list[str], *, first: int = 0) -> None:
    """Profiles with a phone number (``phone(first)`` on), as an identify call before the
    signup leaves them."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": uid,
            "phone": phone(first + i),
            "locale": "zh-CN",
            "traits": {},
            "tags": [],
            "trait_times": {},
            "created_at": now,
            "updated_at": now,
        }
        for i, uid in enumerate(user_ids)
    ]
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.insert(User), rows)
    engine.dispose()


def wait_ready(worker: WorkerProcess, timeout: float = 60) -> None:
    """Until the worker logs that Temporal lists its pollers."""
    deadline = time.monotonic() + timeout
    while not worker.ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker was not ready after {timeout:.0f}s")
        time.sleep(0.1)


def signup(user_id: str, message_id: str) -> dict[str, object]:
    """A ``user_signed_up`` track call as a platform sends it."""
    return {
        "userId": user_id,
        "event": "user_signed_up",
        "messageId": message_id,
        "timestamp": datetime.now(UTC).isoformat(),
        "properties": {"channel": "app"},
    }


def welcome_decided(prefix: str) -> sa.TextClause:
    """The count of users under ``prefix`` whose welcome SMS is decided (sent or skipped)."""
    return sa.text(
        "SELECT count(*) FROM messages WHERE step_id = 'welcome_sms' "
        "AND status NOT IN ('pending', 'sending') AND user_id LIKE :prefix"
    ).bindparams(prefix=f"{prefix}%")


async def until_count(engine: sa.Engine, query: sa.TextClause, want: int, timeout: float) -> None:
    """Poll ``query`` (a count) until it reaches ``want``."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            got = conn.execute(query).scalar_one()
        if got >= want:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{got} of {want} after {timeout:.0f}s")
        await asyncio.sleep(0.2)


async def bounded(clients: int, jobs: list[Callable[[], Awaitable[object]]]) -> None:
    """Run ``jobs``, ``clients`` at a time, in order."""
    todo = list(reversed(jobs))

    async def lane() -> None:
        while todo:
            await todo.pop()()

    await asyncio.gather(*(lane() for _ in range(clients)))


async def journey_round(api_url: str, users: list[str], clients: int) -> None:
    async with httpx.AsyncClient(base_url=api_url, auth=(WRITE_KEY, ""), timeout=60) as http:

        async def post(user: str) -> None:
            resp = await http.post("/v1/track", json=signup(user, f"signup-{user}"))
            if resp.status_code != 200:
                raise RuntimeError(f"the API answered {resp.status_code}: {resp.text[:300]}")

        await bounded(clients, [lambda u=u: post(u) for u in users])  # type: ignore[misc]


def rounds_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """The options of a script that runs rounds of sign-ups: the database, users per round,
    concurrent clients and a round's timeout (its help from the script's docstring)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=doc.split("\n\n")[0] if doc else None,
        epilog=doc.split("\n\n")[-1] if doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--users", type=int, default=300, help="per round (default 300)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a round may take")
    return parser
