"""Chaos beyond the worker: the parts around it fail while sign-ups and sends go on.

Everything is real and local (127.0.0.1 only): PostgreSQL (a database of its own, dropped at
the end), the Temporal dev server on its on-disk store, ``lifecycle api`` and ``lifecycle
worker`` as their own processes, the Twilio stand-in of ``tests/provider_servers.py`` behind
the real ``twilio`` SDK, and the official Segment client (``segment-analytics-python``)
sending identify + track calls to the API in batches, retrying as it does in production.

While the client sends and the journeys run (the chaos journey of ``chaos_kill_worker.py``:
a coupon and three SMS a few seconds apart), three faults, one after another:

1. ``api``: the API is killed (SIGKILL) while a batch is in flight, and started again;
2. ``postgres``: PostgreSQL is restarted (``pg_ctlcluster ... restart``): every connection of
   the API and the worker breaks;
3. ``temporal``: the dev server is stopped and started again on the same file.

Then, once every run has ended: every call the client saw accepted is stored exactly once;
every user whose trigger was accepted has one enrollment whose three SMS are each sent once
(by the provider's own record) or recorded with a reason; nothing is stuck (no open run, no
ledger row pending or sending, no event left unrouted). Exit status 1 otherwise.

PostgreSQL is shared with everything else on the machine: run this alone.

    .venv/bin/python bench/chaos_parts.py                 # 200 users, all three faults
    .venv/bin/python bench/chaos_parts.py --users 60 --faults api,temporal
"""

from __future__ import annotations

import argparse
import getpass
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# As in chaos_kill_worker.py: the project first, this folder last (bench/audiences.py would
# hide the audiences package), the tests' provider stand-ins after it.
_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))
for extra in (ROOT / "tests", _HERE):
    if str(extra) not in sys.path:
        sys.path.append(str(extra))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from chaos_kill_worker import (  # noqa: E402
    JOURNEY_ID,
    OPEN_STATUSES,
    SENT_STATUSES,
    SMS_STEPS,
    CountingTwilio,
    WorkerProcess,
    _people,
    _stop,
    _worker_env,
    free_port,
    journey_yaml,
    verify,
)
from requests.adapters import HTTPAdapter  # noqa: E402
from segment.analytics import Client as SegmentClient  # noqa: E402
from segment.analytics import request as segment_request  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from config import package_binary  # noqa: E402
from journeys.validate import load_journey  # noqa: E402
from message_templates.render import TemplateRenderer  # noqa: E402
from store.db import make_engine, make_session_factory, transaction  # noqa: E402
from store.journeys import publish  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Enrollment, Event, Message, RejectedEvent  # noqa: E402

FAULTS = ("api", "postgres", "temporal")
WRITE_KEY = "dev-write-key"


def pg_admin_url() -> str:
    return f"postgresql+psycopg://{getpass.getuser()}@127.0.0.1:5432/test"


@contextmanager
def scratch_database() -> Iterator[str]:
    """A PostgreSQL database of this run's own; its URL. Dropped afterwards."""
    name = f"chaos_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://{getpass.getuser()}@127.0.0.1:5432/{name}"
    finally:
        for _ in range(30):  # the server may still be coming back from a restart
            try:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                break
            except sa.exc.OperationalError:
                time.sleep(1)
        admin.dispose()


def restart_postgres() -> float:
    """``pg_ctlcluster VERSION main restart``; seconds until it accepts connections again."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    started = time.monotonic()
    subprocess.run(  # noqa: S603 - Debian's own tool, fixed arguments
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],  # noqa: S607
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 60
    while subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], check=False).returncode:  # noqa: S607
        if time.monotonic() > deadline:
            raise TimeoutError("PostgreSQL not accepting connections 60 s after a restart")
        time.sleep(0.2)
    return time.monotonic() - started


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class TemporalServer:
    """``temporal server start-dev`` on its on-disk store, stopped and started at will."""

    def __init__(self, workdir: Path):
        self.port, self.ui_port = free_port(), free_port()
        self.db_file = workdir / "temporal.db"
        self.log = workdir / "temporal.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own binary and arguments
                [
                    str(package_binary("temporal")), "server", "start-dev",
                    "--ip", "127.0.0.1", "--port", str(self.port),
                    "--ui-port", str(self.ui_port), "--headless", "--log-level", "warn",
                    "--db-filename", str(self.db_file),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"temporal dev server did not start; see {self.log}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, signal.SIGTERM)


class ApiProcess:
    """``python -m cli api`` on a port of its own; each life logs to its own file."""

    def __init__(self, env: dict[str, str], workdir: Path):
        self.port = free_port()
        self._env = {**env, "LIFECYCLE_API_PORT": str(self.port)}
        self._workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.lives = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        self.lives += 1
        with (self._workdir / f"api-{self.lives:02d}.log").open("wb") as log:
            self.proc = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "cli", "api"],
                env=self._env,
                cwd=self._workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start (life {self.lives})")
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


class CountingAdapter(HTTPAdapter):
    """The Segment client's HTTP transport, counting answers by status and failed attempts."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: Counter[str] = Counter()

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            response = super().send(request, **kwargs)
        except Exception as exc:
            self.outcomes[type(exc).__name__] += 1
            raise
        self.outcomes[str(response.status_code)] += 1
        return response


class Sender:
    """The official Segment client sending each user's identify and trigger, in batches;
    remembers which calls it gave up on (``on_error``), so the rest count as accepted."""

    def __init__(self, api_url: str, people: list[tuple[str, dict[str, Any]]], pace: float):
        self.people = people
        self.pace = pace  # users per second
        self.calls: dict[str, tuple[str, str]] = {}  # messageId -> (user, type)
        self.failed: set[str] = set()
        self.errors: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.client = SegmentClient(
            write_key=WRITE_KEY,
            host=api_url,
            on_error=self._on_error,
            upload_size=10,
            upload_interval=0.2,
            max_retries=10,
            timeout=15,
        )
        # The client posts through one module-level session: count what it meets.
        self.transport = CountingAdapter()
        segment_request._session.mount("http://", self.transport)
        self.thread = threading.Thread(target=self._send, name="segment-sender", daemon=True)
        self.done = threading.Event()

    def _on_error(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            self.errors[type(error).__name__] += 1
            self.failed.update(str(m.get("messageId")) for m in batch)

    def _send(self) -> None:
        started = time.monotonic()
        for i, (user_id, traits) in enumerate(self.people):
            while time.monotonic() < started + i / self.pace:
                time.sleep(0.01)
            identify, track = str(uuid.uuid4()), str(uuid.uuid4())
            self.calls[identify] = (user_id, "identify")
            self.calls[track] = (user_id, "track")
            self.client.identify(user_id=user_id, traits=traits, message_id=identify)
            self.client.track(
                user_id=user_id,
                event="product_viewed",
                properties={"product_id": "sku-1", "category": "beauty"},
                message_id=track,
            )
        self.client.flush()  # blocks until the queue is empty: sent, or given up on
        self.done.set()

    def accepted(self) -> dict[str, tuple[str, str]]:
        with self._lock:
            return {m: who for m, who in self.calls.items() if m not in self.failed}


@dataclass
class FaultLog:
    name: str
    t: float
    note: str


@dataclass
class PartsReport:
    users: int
    faults: list[FaultLog]
    calls_sent: int
    calls_accepted: int
    calls_given_up: int
    client_requests: dict[str, int]
    accepted_missing: list[str]
    stored_twice: int
    enrolled: int
    expected_enrollments: int
    sends_expected: int
    sent: int
    reasons: dict[str, int]
    duplicates: int
    missing: list[str]
    open_runs: int
    open_rows: int
    unrouted: int
    parked: int
    restarts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (
            self.accepted_missing
            or self.stored_twice
            or self.duplicates
            or self.missing
            or self.open_runs
            or self.open_rows
            or self.unrouted
        )


def run_parts(
    users: int, faults: list[str], seed: int, wait: str, pace: float, drain_timeout: float,
    say: Callable[[str], None] = print,
) -> PartsReport:  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="chaos-parts-"))
    t0 = time.monotonic()

    def t() -> float:
        return time.monotonic() - t0

    twilio = CountingTwilio()
    twilio.start()
    temporal = TemporalServer(workdir)
    fault_log: list[FaultLog] = []
    try:
        with scratch_database() as db_url:
            engine = make_engine(db_url)
            upgrade(engine)
            factory = make_session_factory(engine)
            journey_file = workdir / f"{JOURNEY_ID}.yaml"
            journey_file.write_text(journey_yaml(wait), encoding="utf-8")
            with transaction(factory) as session:
                publish(
                    session,
                    journey=load_journey(journey_file, TemplateRenderer()),
                    source=journey_file.read_text(encoding="utf-8"),
                    now=datetime.now(UTC),
                )
            temporal.start()
            task_queue = f"chaos-{uuid.uuid4().hex[:8]}"
            env = _worker_env(db_url, temporal.address, task_queue, twilio.url, workdir)
            worker, api = WorkerProcess(env, workdir), ApiProcess(env, workdir)
            worker.start()
            api.start()
            say(
                f"[{t():6.1f}s] up: PostgreSQL {db_url.rsplit('/', 1)[-1]}, temporal "
                f"{temporal.address} on {temporal.db_file.name}, api {api.url}, worker, "
                f"twilio stand-in; {users} users at {pace:g}/s; faults {', '.join(faults)}"
            )
            people = _people(random.Random(seed), users, uuid.uuid4().hex[:6])
            sender = Sender(api.url, people, pace)
            sender.thread.start()
            rng = random.Random(seed)
            gap = users / pace / (len(faults) + 1)  # faults spread over the sending
            for name in faults:
                time.sleep(gap * rng.uniform(0.6, 1.0))
                if name == "api":
                    down = time.monotonic()
                    api.kill()
                    time.sleep(1.0)
                    api.start()
                    back = time.monotonic() - down
                    note = f"killed the API mid-batch; answering again after {back:.1f}s"
                elif name == "postgres":
                    took = restart_postgres()
                    note = f"restarted PostgreSQL, accepting again after {took:.1f}s"
                else:
                    temporal.stop()
                    time.sleep(3.0)
                    temporal.start()
                    note = "stopped the Temporal dev server for 3 s and started it again"
                fault_log.append(FaultLog(name, t(), note))
                say(f"[{t():6.1f}s] {name}: {note}")
            sender.done.wait(timeout=600)
            say(f"[{t():6.1f}s] the Segment client flushed; draining the journeys")
            restarts = Counter[str]()
            deadline = time.monotonic() + drain_timeout
            while True:
                if worker.proc is not None and worker.proc.poll() is not None:
                    restarts["worker"] += 1
                    say(f"[{t():6.1f}s] the worker had exited: started again")
                    worker.start()
                with transaction(factory) as session:
                    open_runs = session.scalar(
                        select(func.count()).where(Enrollment.exited_at.is_(None))
                    )
                    enrolled = session.scalar(select(func.count()).select_from(Enrollment))
                    unrouted = session.scalar(select(func.count()).where(Event.routed_at.is_(None)))
                accepted_tracks = {u for u, kind in sender.accepted().values() if kind == "track"}
                if (enrolled or 0) >= len(accepted_tracks) and not open_runs and not unrouted:
                    break
                if time.monotonic() > deadline:
                    say(f"[{t():6.1f}s] gave up: {open_runs} open runs, {unrouted} unrouted")
                    break
                time.sleep(0.5)
            api.stop()
            worker.stop()
            report = _check(factory, sender, people, twilio, fault_log, users)
            report.restarts = dict(restarts)
            report.timings["total"] = t()
            engine.dispose()
            return report
    finally:
        temporal.stop()
        twilio.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _check(
    factory: Any,
    sender: Sender,
    people: list[tuple[str, dict[str, Any]]],
    twilio: CountingTwilio,
    faults: list[FaultLog],
    users: int,
) -> PartsReport:
    accepted = sender.accepted()
    with transaction(factory) as session:
        stored = Counter(
            session.scalars(select(Event.message_id).where(Event.message_id.in_(list(accepted))))
        )
        open_rows = session.scalar(
            select(func.count()).where(Message.status.in_(list(OPEN_STATUSES)))
        )
        open_runs = session.scalar(select(func.count()).where(Enrollment.exited_at.is_(None)))
        unrouted = session.scalar(select(func.count()).where(Event.routed_at.is_(None)))
        parked = session.scalar(select(func.count()).select_from(RejectedEvent))
    triggered = {u for u, kind in accepted.values() if kind == "track"}
    checked = verify(factory, [p for p in people if p[0] in triggered], twilio, [])
    outcomes = checked.outcomes
    return PartsReport(
        users=users,
        faults=faults,
        calls_sent=len(sender.calls),
        calls_accepted=len(accepted),
        calls_given_up=len(sender.failed),
        client_requests=dict(sender.transport.outcomes),
        accepted_missing=[m for m in accepted if m not in stored],
        stored_twice=sum(1 for n in stored.values() if n > 1),
        enrolled=len({o.enrollment_id for o in outcomes}),
        expected_enrollments=len(triggered),
        sends_expected=len(triggered) * len(SMS_STEPS),
        sent=sum(1 for o in outcomes if o.status in SENT_STATUSES),
        reasons=checked.reasons,
        duplicates=len(checked.duplicates),
        missing=checked.missing,
        open_runs=open_runs or 0,
        open_rows=open_rows or 0,
        unrouted=unrouted or 0,
        parked=parked or 0,
    )


def print_report(r: PartsReport, say: Callable[[str], None] = print) -> None:
    say("")
    say(f"the Segment client's requests, by answer: {r.client_requests}")
    say(
        f"calls: sent {r.calls_sent}, accepted {r.calls_accepted}, given up by the client "
        f"{r.calls_given_up}; accepted but not stored {len(r.accepted_missing)}, "
        f"stored twice {r.stored_twice}"
    )
    say(
        f"enrollments {r.enrolled} of {r.expected_enrollments} expected; SMS expected "
        f"{r.sends_expected}, sent {r.sent}, with a reason {sum(r.reasons.values())} "
        f"{r.reasons or ''}, duplicates {r.duplicates}, missing {len(r.missing)}"
    )
    say(
        f"stuck: open runs {r.open_runs}, ledger rows pending/sending {r.open_rows}, "
        f"unrouted events {r.unrouted}; dead-letter rows {r.parked}; "
        f"restarts {r.restarts or 'none'}; total {r.timings.get('total', 0):.1f}s"
    )
    for line in r.missing[:10]:
        say(f"  MISSING {line}")
    for m in r.accepted_missing[:10]:
        say(f"  ACCEPTED BUT NOT STORED {m}")
    say("result: OK" if r.ok else "result: FAILED")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chaos_parts.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=__doc__.split("\n\n")[-1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=200, help="users signed up (default 200)")
    parser.add_argument(
        "--faults", default=",".join(FAULTS), help=f"in this order (default {','.join(FAULTS)})"
    )
    parser.add_argument("--pace", type=float, default=8.0, help="users per second (default 8)")
    parser.add_argument("--wait", default="2s", help="between the SMS steps (default 2s)")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    if unknown := set(faults) - set(FAULTS):
        parser.error(f"unknown faults {sorted(unknown)}; choose from {', '.join(FAULTS)}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    report = run_parts(
        args.users, faults, seed, args.wait, args.pace, args.drain_timeout,
        lambda line: print(line, flush=True),
    )  # fmt: skip
    print_report(report)
    print(f"seed {seed}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())


def py_spy(pid: int, output: str) -> subprocess.Popen[bytes]:
    """py-spy recording ``pid`` (collapsed stacks, GIL-holding samples) into ``output``."""
    return subprocess.Popen(  # noqa: S603 - py-spy on our own child
        [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid),
         "--format", "raw", "--output", output, "--rate", "200", "--nonblocking", "--gil"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
