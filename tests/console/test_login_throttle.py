"""Guessing the admin token at the console login: a few tries, then a growing wait per
client address (429 with Retry-After), and never a lock one address can put on another."""

from __future__ import annotations

from console_support import NOW, TOKEN
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from config import Settings
from console.app import console_app
from console.auth import LoginThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttled_console(db, clock: FakeClock) -> FastAPI:
    settings = Settings(
        environment="test",
        admin_token=TOKEN,
        write_key="wk",
        unsubscribe_secret=SecretStr("us"),
    )
    app = FastAPI()
    console = console_app(
        settings,
        session_factory=db.factory,
        clock=lambda: NOW,
        login_throttle=LoginThrottle(clock=clock),
    )
    app.mount("/console", console)
    return app


def client_at(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, follow_redirects=False, client=(address, 40000))


def test_a_hundred_guesses_meet_a_wait_and_the_token_works_after_it(sqlite_db):
    clock = FakeClock()
    http = client_at(throttled_console(sqlite_db, clock), "203.0.113.7")
    answers = [http.post("/console/login", data={"token": f"guess-{n}"}) for n in range(100)]
    statuses = [answer.status_code for answer in answers]
    assert statuses[:5] == [401] * 5
    assert statuses.count(401) <= 6 and statuses[-1] == 429
    waited = answers[-1]
    assert int(waited.headers["retry-after"]) >= 1
    assert "Too many wrong tokens" in waited.text
    assert "set-cookie" not in waited.headers
    # While the wait lasts even the right token is not tried: a guess cannot tell.
    assert http.post("/console/login", data={"token": TOKEN}).status_code == 429
    clock.now += int(waited.headers["retry-after"])
    assert http.post("/console/login", data={"token": TOKEN}).status_code == 303


def test_the_wait_grows_with_each_wrong_token_up_to_a_ceiling():
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    waits = []
    for _ in range(30):
        assert throttle.retry_after("198.51.100.1") == 0
        waits.append(throttle.failed("198.51.100.1"))
        clock.now += waits[-1]
    assert waits[:5] == [0] * 5
    growing = waits[5:]
    assert growing == sorted(growing) and growing[1] > growing[0] > 0
    assert growing[-1] == LoginThrottle.MAX_WAIT_SECONDS


def test_one_address_guessing_does_not_lock_out_another(sqlite_db):
    clock = FakeClock()
    app = throttled_console(sqlite_db, clock)
    attacker = client_at(app, "203.0.113.7")
    for n in range(20):
        attacker.post("/console/login", data={"token": f"guess-{n}"})
    assert attacker.post("/console/login", data={"token": TOKEN}).status_code == 429
    admin = client_at(app, "192.0.2.10")
    assert admin.post("/console/login", data={"token": TOKEN}).status_code == 303


def test_a_right_token_clears_the_count_and_quiet_addresses_are_forgotten():
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock, max_clients=3)
    for _ in range(4):
        throttle.failed("a")
    throttle.succeeded("a")
    assert [throttle.failed("a") for _ in range(5)] == [0] * 5
    for address in ("b", "c", "d", "e"):  # the table stays bounded: the oldest goes first
        throttle.failed(address)
    assert len(throttle) == 3
    clock.now += LoginThrottle.FORGET_AFTER_SECONDS + 1
    throttle.failed("f")
    assert len(throttle) == 1
