"""Who is where on the journey page, the users at a step, and ejecting them from the console,
with the journey's runs on the time-skipping server and the real worker."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from console_support import console_client, log_in
from runs_support import JOURNEY_ID, ejections, exited, journey_running, settled_where

URL = f"/console/journeys/{JOURNEY_ID}"


def row(page: str, attribute: str, value: str) -> str:
    """The text of the table row whose ``attribute`` is ``value``, tags stripped."""
    match = re.search(rf'<tr {attribute}="{re.escape(value)}">(.*?)</tr>', page, re.S)
    assert match, f"no row {attribute}={value!r}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


async def test_the_table_the_users_at_a_step_and_ejecting_them(time_env, sqlite_db, task_queue):
    db, env = sqlite_db, time_env
    users = {f"w1-{task_queue}": "wechat", f"n1-{task_queue}": "email"}
    users |= {f"n2-{task_queue}": "email"}
    w1, n1, n2 = users
    host = env.client.service_client.config.target_host
    with console_client(db, temporal_address=host) as http:

        async def get(url: str) -> Any:
            return await asyncio.to_thread(http.get, url)

        async def post(url: str, data: dict[str, str]) -> Any:
            return await asyncio.to_thread(http.post, url, data=data)

        csrf = await asyncio.to_thread(log_in, http)
        async with journey_running(env, db, task_queue, users) as t0:
            page = (await get(URL)).text
            assert "Who is where" in page
            assert row(page, "data-step", "nap").startswith("nap 2 ")
            assert row(page, "data-step", "await_view").startswith("await_view 1 ")
            assert f"{t0.replace(second=0, microsecond=0):%Y-%m}" in row(page, "data-step", "nap")
            assert f'href="{URL}/runs/nap"' in page
            assert row(page, "data-step", "route") == "route 0 — —"

            page = (await get(f"{URL}/runs/nap")).text
            assert row(page, "data-user", n1).startswith(f"{n1} — timer ")
            assert row(page, "data-user", n2).startswith(f"{n2} — timer ")
            assert "Eject selected" in page and "Eject everyone at this step" in page
            selected = {
                name: value
                for name, value in re.findall(r'name="(user\.\d+)" value="([^"]+)"', page)
            }
            n1_box = next(name for name, value in selected.items() if value == n1)

            eject = f"{URL}/runs/nap/eject"
            forged = await post(eject, {"csrf": "forged", n1_box: n1, "reason": "x"})
            assert forged.status_code == 403
            no_reason = await post(eject, {"csrf": csrf, n1_box: n1, "reason": " "})
            assert no_reason.status_code == 400
            assert "Say why: the reason is recorded" in no_reason.text
            nobody = await post(eject, {"csrf": csrf, "reason": "r", "whom": "selected"})
            assert nobody.status_code == 400
            assert "Select at least one user" in nobody.text
            await settled_where(
                env_admin(env, db), {"nap": 2, "await_view": 1}
            )  # nothing was ejected

            done = await post(
                eject, {"csrf": csrf, n1_box: n1, "reason": "asked to stop", "whom": "selected"}
            )
            assert done.status_code == 303
            assert done.headers["location"] == f"{URL}/runs/nap?ejected=1"
            assert "Ejected 1 run(s)" in (await get(done.headers["location"])).text

            everyone = await post(
                f"{URL}/runs/await_view/eject",
                {"csrf": csrf, "reason": "wrong offer", "whom": "everyone"},
            )
            assert everyone.status_code == 303
            await exited(db.factory, {w1: "ejected", n1: "ejected", n2: None})
            page = (await get(URL)).text
            assert row(page, "data-step", "nap").startswith("nap 1 ")

        assert (await get(f"{URL}/runs/nope")).status_code == 404
    facts = ejections(db.factory)
    assert (facts[n1]["actor"], facts[n1]["reason"], facts[n1]["step"]) == (
        "console",
        "asked to stop",
        "nap",
    )
    assert (facts[w1]["actor"], facts[w1]["step"]) == ("console", "await_view")
    assert n2 not in facts


def env_admin(env: Any, db: Any) -> Any:
    from enrollment.runs_admin import RunsAdmin

    return RunsAdmin(factory=db.factory, client=env.client)


def test_without_temporal_the_journey_page_says_so(db, admin):
    """A journey with open runs and no Temporal to ask: the page still shows, saying why
    who is where cannot be shown."""
    from console_support import enroll, seed_journey

    http, _ = admin
    seed_journey(db)
    enroll(db, "u-1")
    page = http.get("/console/journeys/new_user_coupon")
    assert page.status_code == 200
    assert "Who is where cannot be shown: Temporal at" in page.text
