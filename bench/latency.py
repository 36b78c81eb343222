"""From ``POST /v1/track user_signed_up`` to the welcome SMS at the provider: percentiles.

On a Temporal dev server on its on-disk store, a fresh database (a private PostgreSQL
schema, or a SQLite file) with the shipped journeys published, quiet hours and frequency
caps off, ``lifecycle api`` and one ``lifecycle worker`` as processes, SMS through the real
Twilio SDK to the local Twilio stand-in of the tests (``tests/provider_servers.py``):

1. **max rate**: ``--burst`` sign-ups posted by ``--clients`` clients at once; the rate at
   which their welcome SMS reach the stand-in;
2. **paced**: ``--users`` sign-ups, one every 1 / rate seconds at half that rate (or
   ``--rate``), each posted on time whatever the earlier ones are doing; for each, the time
   from just before its POST to the stand-in receiving its SMS.

Users are in the journey's treatment group (each gets the SMS) and have a phone. Prints
p50 / p95 / p99 / max (goal: p99 ≤ 1 s), the POST's own p50 / p99, and for the slowest
runs where the time went, from their Temporal histories.

    .venv/bin/python bench/latency.py                       # PostgreSQL
    .venv/bin/python bench/latency.py --database sqlite --users 300
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import journey_stack  # first: puts the project's packages ahead of bench/ on sys.path

ROOT = journey_stack.ROOT

import chaos_parts  # noqa: E402
import httpx  # noqa: E402
from chaos_kill_worker import CountingTwilio, _worker_env  # noqa: E402
from journey_stack import (  # noqa: E402
    WRITE_KEY,
    WorkerProcess,
    add_users,
    database,
    phone,
    publish_shipped,
    signup,
    temporal_on_disk,
    wait_ready,
)
from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client  # noqa: E402

from config import Settings  # noqa: E402
from enrollment.router import holdout_group  # noqa: E402
from triggers.temporal_client import connect  # noqa: E402
from workflows.ids import journey_workflow_id  # noqa: E402

JOURNEY = "new_user_coupon"


def treatment_users(prefix: str, count: int) -> list[str]:
    """``count`` user ids the journey's holdout hash puts in the treatment group."""
    users: list[str] = []
    i = 0
    while len(users) < count:
        user = f"{prefix}{i:06d}"
        if holdout_group(JOURNEY, user, 10) == "treatment":
            users.append(user)
        i += 1
    return users


def phones_of(users: list[str], first: int) -> dict[str, str]:
    """User by the phone ``journey_stack.add_users(..., first=first)`` gave them."""
    return {phone(first + i): user for i, user in enumerate(users)}


async def arrivals(
    twilio: CountingTwilio, phones: dict[str, str], timeout: float
) -> dict[str, float]:
    """Wait until every user's SMS reached the stand-in; when each did (monotonic)."""
    deadline = time.monotonic() + timeout
    while True:
        got = {phones[c.to]: c.at for c in twilio.snapshot() if c.to in phones}
        if len(got) >= len(phones):
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(got)} of {len(phones)} SMS after {timeout:.0f}s")
        await asyncio.sleep(0.1)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def where_the_time_went(client: Client, user: str, posted: float, wall0: float) -> str:
    """The gaps of one run's history up to the SMS: from the POST to the run's start, and
    between the events after it (workflow tasks, activities scheduled, started, done)."""
    history = await client.get_workflow_handle(journey_workflow_id(JOURNEY, user)).fetch_history()
    steps = []
    last = posted
    for event in history.events:
        at = event.event_time.ToDatetime().timestamp() - wall0
        name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower()
        steps.append(f"{name} +{at - last:.2f}")
        last = at
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED and len(steps) > 12:
            break
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            break
    return ", ".join(steps)


async def post_all(http: httpx.AsyncClient, users: list[str], pace: float | None,
                   clients: int) -> tuple[dict[str, float], list[float]]:  # fmt: skip
    """Post each user's signup: ``clients`` at a time, or one every ``pace`` seconds. When
    each POST began (monotonic), and how long each took."""
    posted: dict[str, float] = {}
    took: list[float] = []
    limit = asyncio.Semaphore(clients if pace is None else len(users))

    async def post(user: str, at: float) -> None:
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        async with limit:
            began = time.monotonic()
            posted[user] = began
            resp = await http.post("/v1/track", json=signup(user, f"signup-{user}"))
            took.append(time.monotonic() - began)
            if resp.status_code != 200:
                raise RuntimeError(f"the API answered {resp.status_code}: {resp.text[:300]}")

    start = time.monotonic() + 0.2
    await asyncio.gather(*(post(u, start + i * pace if pace else 0.0) for i, u in enumerate(users)))
    return posted, took


async def bench(args: argparse.Namespace, workdir: Path) -> int:
    twilio = CountingTwilio().start()
    with (
        temporal_on_disk(workdir) as (address, _),
        database(args.database, workdir) as url,
    ):
        publish_shipped(url)
        # Quiet hours and caps off, SMS through Twilio's SDK to the stand-in.
        env = _worker_env(url, address, "bench-latency", twilio.url, workdir)
        env.update(LIFECYCLE_WRITE_KEY=WRITE_KEY)
        api = chaos_parts.ApiProcess(env, workdir)
        worker = WorkerProcess(env, workdir)
        api.start()
        worker.start()
        client = await connect(Settings(database_url=url, temporal_address=address))
        wall0 = time.time() - time.monotonic()  # monotonic -> epoch seconds
        try:
            wait_ready(worker)
            async with httpx.AsyncClient(
                base_url=api.url, auth=(WRITE_KEY, ""), timeout=60
            ) as http:
                burst = treatment_users(f"b{uuid.uuid4().hex[:4]}-", args.burst)
                add_users(url, burst)
                phones = phones_of(burst, 0)
                started = time.monotonic()
                await post_all(http, burst, None, args.clients)
                await arrivals(twilio, phones, args.timeout)
                max_rate = args.burst / (time.monotonic() - started)
                rate = args.rate or max_rate / 2
                print(
                    f"latency: max rate {max_rate:.1f} sign-ups/s ({args.burst} at once, "
                    f"{args.clients} clients, {args.database}); paced at {rate:.1f}/s, "
                    f"{args.users} sign-ups",
                    flush=True,
                )
                users = treatment_users(f"p{uuid.uuid4().hex[:4]}-", args.users)
                add_users(url, users, first=args.burst)
                phones = phones_of(users, args.burst)
                posted, took = await post_all(http, users, 1 / rate, args.clients)
                arrived = await arrivals(twilio, phones, args.timeout)
        finally:
            worker.stop()
            api.stop()
            twilio.stop()
        latency = {u: arrived[u] - posted[u] for u in users}
        values = list(latency.values())
        print(
            f"POST → SMS at the provider: p50 {percentile(values, 0.5):.3f}s, "
            f"p95 {percentile(values, 0.95):.3f}s, p99 {percentile(values, 0.99):.3f}s, "
            f"max {max(values):.3f}s, mean {statistics.mean(values):.3f}s (goal p99 <= 1s)"
        )
        print(f"POST answered: p50 {percentile(took, 0.5):.3f}s, p99 {percentile(took, 0.99):.3f}s")
        late = sorted(latency, key=latency.__getitem__, reverse=True)[: max(3, len(users) // 100)]
        print(f"where the time went, the {len(late)} slowest (seconds since the step before):")
        for user in late:
            line = await where_the_time_went(client, user, posted[user], wall0)
            print(f"  {latency[user]:.2f}s {user}: {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="latency.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=__doc__.split("\n\n")[-1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--burst", type=int, default=200, help="sign-ups for the max rate (200)")
    parser.add_argument("--users", type=int, default=600, help="paced sign-ups (default 600)")
    parser.add_argument("--rate", type=float, help="sign-ups per second (default: half the max)")
    parser.add_argument("--clients", type=int, default=8, help="clients of the burst (8)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for SMS")
    args = parser.parse_args(argv)
    # The processes' logs and the dev server's file, removed at the end.
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as workdir:
        return asyncio.run(bench(args, Path(workdir)))


if __name__ == "__main__":
    sys.exit(main())
