"""Audience speed: compiled ``count``/``contains`` against hand-written SQL, in one run.

Generates a synthetic population (see ``bench/population.py``) into a private PostgreSQL
schema (or a SQLite file), migrated with the real migrations, then for each shipped audience:

- ``Audience.count`` and the hand-written query of ``bench/handwritten.py`` (best of 3 after
  a warm-up), which must agree; the ratio compiled / hand-written is the number to watch
  (goal ≤ 1.2);
- ``Audience.contains`` for random users: p50 / p99 latency, checked against the
  population shape for the same users;
- with ``--explain``, the plans (``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL, ``EXPLAIN QUERY
  PLAN`` on SQLite) of every query timed.

A schema or file this run created is dropped at the end unless ``--keep``; one it found
(``--schema``/``--sqlite-file`` with ``--reuse``) is left alone. Exit status 1 when a count
or a membership disagrees or a query times out (``--timeout``).

    .venv/bin/python bench/audiences.py                    # PostgreSQL, 1M users, 10M events
    .venv/bin/python bench/audiences.py --quick            # 50k users, 500k events
    .venv/bin/python bench/audiences.py --dialect sqlite   # 100k users, 1M events
"""

from __future__ import annotations

import argparse
import functools
import getpass
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and its name would hide the
# `audiences` package it measures: look the project up from its root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import sqlalchemy as sa  # noqa: E402
from alembic import command  # noqa: E402
from alembic.autogenerate import compare_metadata  # noqa: E402
from alembic.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402
from sqlalchemy import Engine, event, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from audiences.audience import Audience, shipped_audiences  # noqa: E402
from bench import handwritten, population  # noqa: E402
from store.db import make_engine, make_session_factory  # noqa: E402
from store.migrate import alembic_config, upgrade  # noqa: E402
from store.models import Base, Event, User  # noqa: E402

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # noon in Shanghai; the data is built around it
PG_BASE = os.environ.get(
    "LIFECYCLE_BENCH_POSTGRES_URL",
    f"postgresql+psycopg://{getpass.getuser()}@127.0.0.1:5432/test",
)
SIZES = {  # (users, events)
    "postgresql": (1_000_000, 10_000_000),
    "sqlite": (100_000, 1_000_000),
    "quick": (50_000, 500_000),
}


def say(line: str = "") -> None:
    print(line, flush=True)


# --- the database under test --------------------------------------------------------------


class Watch:
    """Engine hooks: a statement timeout for SQLite, and plan capture (``EXPLAIN``)."""

    def __init__(self, engine: Engine, timeout: float):
        self.dialect = engine.dialect.name
        self.timeout = timeout
        self.started = 0.0
        self.explain: str | None = None  # prefix to put before the next statement
        self.plan: list[str] = []
        event.listen(engine, "before_cursor_execute", self._before, retval=True)
        event.listen(engine, "after_cursor_execute", self._after)
        if self.dialect == "sqlite":
            event.listen(engine, "connect", self._on_connect)

    def _on_connect(self, dbapi_conn: Any, _record: Any) -> None:
        # SQLite has no statement timeout: interrupt from its progress callback instead.
        dbapi_conn.set_progress_handler(
            lambda: time.perf_counter() - self.started > self.timeout, 100_000
        )

    def _before(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> tuple[str, Any]:
        self.started = time.perf_counter()
        if self.explain is not None:
            statement = self.explain + statement
        return statement, parameters

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.explain is None:
            return
        self.explain = None
        rows = cursor.fetchall()  # the plan; the caller's result then reads nothing
        if self.dialect == "postgresql":
            self.plan = [r[0] for r in rows]
            return
        depth: dict[int, int] = {0: -1}
        self.plan = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, -1) + 1
            self.plan.append("  " * depth[node] + detail)

    def capture(self, run: Callable[[], object], *, analyze: bool = True) -> list[str]:
        if self.dialect == "postgresql":
            self.explain = "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
        else:
            self.explain = "EXPLAIN QUERY PLAN "
        self.plan = []
        try:
            run()
        finally:
            self.explain = None
        return self.plan


@dataclass
class Target:
    dialect: str
    url: str  # for loading: no statement timeout
    engine: Engine  # for measuring
    cleanup: Callable[[], None]
    where: str


@contextmanager
def open_target(args: argparse.Namespace) -> Iterator[Target]:
    admin: Engine | None = None
    if args.dialect == "sqlite":
        tmp = None if args.sqlite_file else Path(tempfile.mkdtemp(prefix="bench_audiences_"))
        path = Path(args.sqlite_file) if args.sqlite_file else (tmp or Path()) / "bench.db"
        existed = path.exists()
        url = f"sqlite:///{path}"

        def drop_file() -> None:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)

        target = Target("sqlite", url, make_engine(url), drop_file, str(path))
    else:
        schema = args.schema or f"bench_{uuid.uuid4().hex[:10]}"
        admin = make_engine(args.url)
        with admin.begin() as conn:
            existed = bool(
                conn.scalar(
                    text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": schema}
                )
            )
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        url = f"{args.url}?options=-csearch_path%3D{schema}"
        options = [f"statement_timeout={int(args.timeout * 1000)}", *args.set]
        extra = "".join(f"%20-c{o.replace('=', '%3D')}" for o in options)

        def drop_schema(admin: Engine = admin) -> None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))

        target = Target(
            "postgresql", url, make_engine(f"{url}{extra}"), drop_schema, f"schema {schema}"
        )
    try:
        yield target
    finally:
        target.engine.dispose()
        if args.keep or existed:
            say(f"kept {target.where}")
        else:
            target.cleanup()
        if admin is not None:
            admin.dispose()


def migrate(engine: Engine, revision: str) -> None:
    """Bring the schema to ``revision``, downgrading when it is further along."""
    cfg = alembic_config()
    script = ScriptDirectory.from_config(cfg)
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    wanted = script.get_revision(revision)
    if current is not None and wanted is not None and current != wanted.revision:
        behind = {r.revision for r in script.walk_revisions(base="base", head=current)}
        if wanted.revision in behind:
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, wanted.revision)
            return
    upgrade(engine, revision)


def populate(target: Target, args: argparse.Namespace) -> None:
    loader = make_engine(target.url)
    try:
        with loader.connect() as conn:
            have = conn.scalar(select(sa.func.count()).select_from(User)) or 0
        if have and args.reuse:
            say(f"reusing {target.where}: {have:,} users already there")
        elif have:
            raise SystemExit(f"{target.where} already holds users; pass --reuse to measure them")
        else:
            say(f"generating {args.users:,} users / ~{args.events:,} events in {target.where}")
            started = time.perf_counter()
            with loader.begin() as conn:
                if target.dialect == "postgresql":
                    population.generate_postgresql(
                        conn,
                        users=args.users,
                        events=args.events,
                        now=NOW,
                        seed=args.seed,
                        progress=say,
                    )
                else:
                    population.generate_sqlite(
                        conn, users=args.users, events=args.events, now=NOW, progress=say
                    )
            say(f"  {'generated in':<44} {time.perf_counter() - started:7.1f} s")
        started = time.perf_counter()
        with loader.connect() as conn:
            if target.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.execute(text("VACUUM (ANALYZE)" if not have else "ANALYZE"))
            else:
                conn.execute(text("ANALYZE"))
                conn.commit()
                # Readers then find every page in the database file, none in the WAL.
                conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        say(f"  {'vacuum/analyze':<44} {time.perf_counter() - started:7.1f} s")
    finally:
        loader.dispose()


def describe_target(target: Target, revision: str) -> None:
    with target.engine.connect() as conn:
        counts = {t: conn.scalar(text(f"SELECT count(*) FROM {t}")) for t in population.TABLES}
        say("rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
        by_event = conn.execute(
            select(Event.event, sa.func.count()).group_by(Event.event).order_by(Event.event)
        ).all()
        say("events: " + ", ".join(f"{e} {n:,}" for e, n in by_event))
        recent = conn.execute(
            select(
                *(
                    sa.func.count().filter(Event.timestamp >= NOW - timedelta(days=d))
                    for d in (7, 90)
                )
            )
        ).one()
        total_events = max(sum(n for _, n in by_event), 1)
        say(
            f"events in the last 7 / 90 days: {recent[0] / total_events:.1%} / "
            f"{recent[1] / total_events:.1%}"
        )
        dormant = conn.scalar(
            select(sa.func.count()).where(
                sa.or_(User.last_seen_at.is_(None), User.last_seen_at < NOW - timedelta(days=30))
            )
        )
        say(f"users not seen for 30 days: {(dormant or 0) / max(counts['users'] or 1, 1):.1%}")
        if target.dialect == "postgresql":
            sizes = conn.execute(
                text(
                    "SELECT relname, pg_size_pretty(pg_table_size(oid)), "
                    "pg_size_pretty(pg_indexes_size(oid)) FROM pg_class "
                    "WHERE relnamespace = current_schema()::regnamespace AND relname = ANY(:t)"
                ),
                {"t": list(population.TABLES)},
            ).all()
            say("sizes (table / indexes): " + ", ".join(f"{n} {t} / {i}" for n, t, i in sizes))
            settings = conn.execute(
                text(
                    "SELECT name, setting, unit FROM pg_settings WHERE name IN ('shared_buffers', "
                    "'work_mem', 'jit', 'max_parallel_workers_per_gather', 'random_page_cost')"
                )
            ).all()
            say(
                conn.scalar(text("SELECT version()")).split(" on ")[0]  # type: ignore[union-attr]
                + ": "
                + ", ".join(f"{n}={s}{u or ''}" for n, s, u in settings)
            )
        else:
            say(f"SQLite {conn.scalar(text('SELECT sqlite_version()'))}")
        if revision == "head":
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            say("schema matches the models" if not diffs else f"SCHEMA DIFFERS: {diffs}")


# --- measuring ----------------------------------------------------------------------------


@dataclass
class Measured:
    value: Any = None
    best_ms: float | None = None  # None: timed out


@dataclass
class Row:
    audience: str
    results: dict[str, Measured]
    plans: dict[str, list[str]] = field(default_factory=dict)

    @property
    def members(self) -> Any:
        return self.results["hand-written"].value

    def problems(self) -> list[str]:
        out = []
        for label, m in self.results.items():
            if m.best_ms is None:
                out.append(f"{label} timed out")
            elif label != "hand-written" and m.value != self.members:
                out.append(f"MISMATCH: {label} {m.value} != hand-written {self.members}")
        return out


def _timed_out(exc: sa.exc.OperationalError) -> bool:
    return "statement timeout" in str(exc) or "interrupted" in str(exc)


def race(
    session: Session,
    runs: dict[str, Callable[[], Any]],
    rounds: int = 3,
    *,
    budget_ms: float = 3000.0,
    max_rounds: int = 25,
) -> dict[str, Measured]:
    """A warm-up of each, then ``rounds`` rounds taking turns, each round started by the next
    one (so a busy machine and warm caches favour none); the best time of each. Quick
    queries get more rounds, up to ``max_rounds``, while each one's rounds so far took under
    ``budget_ms``: on a busy machine most runs of a 100 ms query are slowed by other work,
    and three rounds often hold no undisturbed one. One round only when a warm-up took over
    20 s."""
    results = {label: Measured() for label in runs}
    times: dict[str, list[float]] = {label: [] for label in runs}
    alive = dict(runs)
    round_no = 0

    def more() -> bool:
        if round_no <= rounds:
            return True
        spent = max((sum(times[label]) for label in alive), default=0.0)
        return round_no <= max_rounds and spent < budget_ms

    while alive and more():
        turn = list(alive.items())
        turn = turn[round_no % len(turn) :] + turn[: round_no % len(turn)]  # who goes first
        for label, run in turn:
            started = time.perf_counter()
            try:
                value = run()
            except sa.exc.OperationalError as exc:
                session.rollback()
                if not _timed_out(exc):
                    raise
                del alive[label]
                continue
            elapsed = (time.perf_counter() - started) * 1000
            session.rollback()
            results[label].value = value
            if round_no:
                times[label].append(elapsed)
            elif elapsed > 20_000:
                rounds = 1
        round_no += 1
    for label, spent in times.items():
        if spent and label in alive:
            results[label].best_ms = min(spent)
    return results


def measure_counts(
    target: Target,
    watch: Watch,
    audiences: dict[str, Audience],
    *,
    explain: bool,
) -> list[Row]:
    factory = make_session_factory(target.engine)
    sqls = {k: text(q) for k, q in handwritten.QUERIES[target.dialect].items()}
    params = handwritten.params(target.dialect, NOW)
    rows = []
    for audience_id, audience in audiences.items():
        with factory() as session:
            runs: dict[str, Callable[[], Any]] = {
                "compiled": functools.partial(audience.count, session, now=NOW),
                "hand-written": functools.partial(session.scalar, sqls[audience_id], params),
            }
            row = Row(audience_id, race(session, runs))
            if explain:
                for label, run in runs.items():
                    row.plans[label] = plan_of(session, watch, run)
        rows.append(row)
        timings = " / ".join(_ms(row.results[label]).strip() for label in runs)
        flags = "".join(f"   <-- {p}" for p in row.problems())
        say(f"  {audience_id:<22} {' / '.join(runs)}: {timings} ms{flags}")
    return rows


def plan_of(session: Session, watch: Watch, run: Callable[[], object]) -> list[str]:
    try:
        return watch.capture(run)
    except sa.exc.OperationalError as exc:
        session.rollback()
        if not _timed_out(exc):
            raise
        plan = watch.capture(run, analyze=False)
        return ["(EXPLAIN ANALYZE timed out; the plan without running it:)", *plan]
    finally:
        session.rollback()


@dataclass
class Latency:
    audience: str
    members: int
    p50: float
    p99: float
    check: str


def measure_contains(
    target: Target, audiences: dict[str, Audience], user_ids: list[str]
) -> list[Latency]:
    """Per audience: members among ``user_ids``, p50 and p99 ms, and a membership check
    against the population shape for the same users."""
    factory = make_session_factory(target.engine)
    out = []
    for audience_id, audience in audiences.items():
        with factory() as session:
            for user_id in user_ids[:20]:  # warm-up
                audience.contains(session, user_id=user_id, now=NOW)
            times, found = [], set()
            for user_id in user_ids:
                started = time.perf_counter()
                if audience.contains(session, user_id=user_id, now=NOW):
                    found.add(user_id)
                times.append((time.perf_counter() - started) * 1000)
            session.rollback()
            check = "ok"
            try:
                cond = audience.condition(session, NOW, correlated=False)
                expected = set(session.scalars(select(User.id).where(User.id.in_(user_ids), cond)))
                if expected != found:
                    check = f"MISMATCH ({len(found ^ expected)} users differ)"
            except sa.exc.OperationalError as exc:
                session.rollback()
                if not _timed_out(exc):
                    raise
                check = "unchecked (population query timed out)"
        q = statistics.quantiles(times, n=100, method="inclusive")
        out.append(Latency(audience_id, len(found), q[49], q[98], check))
        say(f"  {audience_id:<22} p50 {q[49]:6.2f} ms  p99 {q[98]:6.2f} ms  {check}")
    return out


def _ms(m: Measured) -> str:
    return f"{m.best_ms:10.1f}" if m.best_ms is not None else f"{'timeout':>10}"


def _ratio(a: Measured, b: Measured, goal: float | None = 1.2) -> str:
    if a.best_ms is None or b.best_ms is None:
        return f"{'n/a':>7}"
    ratio = a.best_ms / max(b.best_ms, 0.001)
    return f"{ratio:7.2f}" + ("  > 1.2" if goal is not None and ratio > goal else "       ")


def print_report(rows: list[Row], contains: list[Latency], total_users: int) -> None:
    say()
    say(f"count ({total_users:,} users)")
    say(f"{'audience':<22} {'members':>9} {'compiled ms':>12} {'hand ms':>10} {'ratio':>7}")
    for r in rows:
        c, h = r.results["compiled"], r.results["hand-written"]
        line = f"{r.audience:<22} {r.members or 0:>9,} {_ms(c):>12} {_ms(h):>10} {_ratio(c, h)}"
        say(line + "".join(f"  {p}" for p in r.problems()))
    say()
    say("contains")
    say(f"{'audience':<22} {'in sample':>9} {'p50 ms':>8} {'p99 ms':>8}  check")
    for lat in contains:
        say(f"{lat.audience:<22} {lat.members:>9} {lat.p50:8.2f} {lat.p99:8.2f}  {lat.check}")
    for r in rows:
        for label, plan in r.plans.items():
            say()
            say(f"--- {r.audience}: {label} ---")
            for line in plan:
                say(line)


# --- command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/audiences.py",
        description="Time the shipped audiences' compiled count/contains against hand-written "
        "SQL on a generated population (PostgreSQL by default).",
        epilog="examples:\n"
        "  bench/audiences.py                   PostgreSQL, 1,000,000 users / 10,000,000 events\n"
        "  bench/audiences.py --quick           50,000 users / 500,000 events\n"
        "  bench/audiences.py --dialect sqlite  100,000 users / 1,000,000 events\n"
        "  bench/audiences.py --schema b --keep --revision 0006, then --schema b --reuse\n"
        "                                       before / after the audience indexes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dialect", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--users",
        type=int,
        help="users to generate (default by dialect: 1,000,000 on PostgreSQL, 100,000 on SQLite)",
    )
    parser.add_argument(
        "--events",
        type=int,
        help="events to generate, about (default 10,000,000 on PostgreSQL, 1,000,000 on SQLite)",
    )
    parser.add_argument("--quick", action="store_true", help="50,000 users / 500,000 events")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    parser.add_argument("--keep", action="store_true", help="keep the schema / file at the end")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the data already in --schema / --sqlite-file"
    )
    parser.add_argument("--schema", help="PostgreSQL schema to use (default: a new bench_*)")
    parser.add_argument("--sqlite-file", help="SQLite file to use (default: a temporary one)")
    parser.add_argument(
        "--url",
        default=PG_BASE,
        help=f"PostgreSQL URL (default {PG_BASE}, or env LIFECYCLE_BENCH_POSTGRES_URL)",
    )
    parser.add_argument(
        "--revision",
        default="head",
        help="migrate (up or down) to this revision first (default head; 0006, the one before "
        "0007: without the audience indexes)",
    )
    parser.add_argument(
        "--contains", type=int, default=1000, help="random users for contains (default 1000)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds before one query is abandoned (default 60)",
    )
    parser.add_argument("--only", action="append", help="measure only this audience (repeat)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="PostgreSQL setting for the measuring sessions, e.g. jit=off",
    )
    parser.add_argument(
        "--seed", type=float, default=0.42, help="PostgreSQL setseed() (default 0.42)"
    )
    args = parser.parse_args(argv)
    users, events = SIZES["quick" if args.quick else args.dialect]
    args.users = args.users or users
    args.events = args.events or events
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    audiences = shipped_audiences()
    if args.only:
        audiences = {k: v for k, v in audiences.items() if k in args.only}
    with open_target(args) as target:
        started = time.perf_counter()
        loader = make_engine(target.url)
        migrate(loader, args.revision)
        loader.dispose()
        populate(target, args)
        say(f"ready in {time.perf_counter() - started:.1f} s (now = {NOW.isoformat()})")
        watch = Watch(target.engine, args.timeout)  # before the first connection
        describe_target(target, args.revision)

        say("\ncount: best of 3-25 rounds after a warm-up, taking turns")
        rows = measure_counts(target, watch, audiences, explain=args.explain)
        with target.engine.connect() as conn:
            total = conn.scalar(select(sa.func.count()).select_from(User)) or 0
        sample = random.Random(7).sample(range(1, total + 1), min(args.contains, total))
        say(f"\ncontains: {len(sample)} random users per audience")
        contains = measure_contains(target, audiences, [f"u{i:08d}" for i in sample])
        print_report(rows, contains, total)
    failed = [r.audience for r in rows if r.problems()]
    failed += [c.audience for c in contains if c.check.startswith("MISMATCH")]
    if failed:
        say(f"\nFAILED: {', '.join(sorted(set(failed)))}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
