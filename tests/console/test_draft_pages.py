"""The draft and versions pages: save a draft (problems shown beside their lines), its diff
against live, publish it with a note, the versions with who/when/note and each diff, roll
back; every form needs the session's CSRF token."""

from __future__ import annotations

import html
import re

import pytest
from console_support import NOW, console_client, log_in
from fastapi.testclient import TestClient

from journey_support import publish_shipped
from journeys.validate import shipped_journey_files
from store.db import transaction
from store.journeys import history, latest_version
from store.models import JourneyDraft

SOURCE = next(p for p in shipped_journey_files() if p.stem == "new_user_coupon").read_text()
EDITED = SOURCE.replace("holdout: 10 ", "holdout: 20 ")
BROKEN = EDITED.replace("template: new_user_reminder_push", "template: nope")
DRAFT = "/console/journeys/new_user_coupon/draft"
VERSIONS = "/console/journeys/new_user_coupon/versions"


@pytest.fixture
def http(db) -> TestClient:
    client = console_client(db)
    client.headers["x-csrf-for-test"] = log_in(client)
    return client


def csrf(http: TestClient) -> str:
    return http.headers["x-csrf-for-test"]


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_the_draft_page_edits_the_live_yaml_until_a_draft_is_saved(db, http) -> None:
    publish_shipped(db.factory, "new_user_coupon", NOW)
    page = http.get(DRAFT)
    assert page.status_code == 200
    assert html.escape(SOURCE, quote=False) in page.text
    assert "No draft saved: this is\n  the live version, v1" in page.text
    assert 'data-problems="0"' in page.text
    assert "No draft saved yet" in page.text
    assert http.get("/console/journeys/no_such/draft").status_code == 404


def test_a_draft_with_problems_is_saved_and_shows_them_beside_their_lines(db, http) -> None:
    publish_shipped(db.factory, "new_user_coupon", NOW)
    saved = http.post(DRAFT, data={"csrf": csrf(http), "yaml": BROKEN})
    assert saved.status_code == 303 and saved.headers["location"].endswith("/draft?did=saved")

    page = http.get(DRAFT + "?did=saved").text
    assert "Draft saved. Nothing changed for users" in page
    assert "by console" in page
    line = BROKEN.splitlines().index("    template: nope") + 1
    row = re.search(rf'<tr id="line-{line}" data-line="{line}">.*?</tr>', page, re.S)
    assert row, page
    assert "template: nope" in row[0] and "unknown template" in row[0]
    assert 'data-problem-field="steps[3].template"' in row[0]
    diff = text_of(re.search(r"<pre data-diff>(.*?)</pre>", page, re.S)[1])  # type: ignore[index]
    assert diff.startswith("--- new_user_coupon v1 (live)\n+++ new_user_coupon draft\n")
    assert "\n-    template: new_user_reminder_push\n+    template: nope\n" in diff
    with db.factory() as session:
        live = latest_version(session, journey_id="new_user_coupon")
        assert live is not None and live.version == 1  # nothing went live

    # Publishing it is refused, naming the problem; the draft stays.
    refused = http.post(DRAFT + "/publish", data={"csrf": csrf(http), "note": "x"})
    assert refused.status_code == 400
    assert "The draft is not published" in refused.text and "unknown template" in refused.text
    with db.factory() as session:
        assert session.query(JourneyDraft).count() == 1


def test_publish_a_draft_with_a_note_then_roll_back(db, http) -> None:
    publish_shipped(db.factory, "new_user_coupon", NOW)
    http.post(DRAFT, data={"csrf": csrf(http), "yaml": EDITED})
    done = http.post(DRAFT + "/publish", data={"csrf": csrf(http), "note": "more holdout"})
    assert done.status_code == 303 and done.headers["location"].endswith("/versions?did=published")

    page = http.get(VERSIONS + "?did=published").text
    assert "Published: new entries take this version" in page
    rows = re.findall(r'<tr data-version="(\d+)">(.*?)</tr>', page, re.S)
    assert [v for v, _ in rows] == ["2", "1"]
    cells = [text_of(c).strip() for c in re.findall(r"<td>(.*?)</td>", rows[0][1], re.S)]
    assert cells[:5] == ["v2", "2026-06-18 02:00", "console", "published", "more holdout"]
    assert "Roll back to v1" in rows[1][1] and "Roll back" not in rows[0][1]
    assert "\n-holdout: 10 " in text_of(page) and "\n+holdout: 20 " in text_of(page)

    back = http.post(
        VERSIONS + "/1/rollback", data={"csrf": csrf(http), "note": "too many held out"}
    )
    assert back.status_code == 303 and back.headers["location"].endswith("?did=rolledback")
    with db.factory() as session:
        newest = history(session, journey_id="new_user_coupon")[0].version
    assert (newest.version, newest.source, newest.note, newest.published_by) == (
        3,
        SOURCE,
        "rolled back to v1: too many held out",
        "console",
    )
    assert http.post(VERSIONS + "/9/rollback", data={"csrf": csrf(http)}).status_code == 404


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        (DRAFT, {"yaml": EDITED}),
        (DRAFT + "/publish", {"note": "x"}),
        (VERSIONS + "/1/rollback", {"note": "x"}),
        (DRAFT + "/simulate", {}),
    ],
)
def test_every_form_refuses_a_forged_or_missing_csrf_token(db, http, path, fields) -> None:
    publish_shipped(db.factory, "new_user_coupon", NOW)
    with transaction(db.factory) as session:
        session.add(JourneyDraft(journey_id="new_user_coupon", source=EDITED, saved_at=NOW,
                                 saved_by="x"))  # fmt: skip
    for token in ("forged", None):
        data = fields | ({"csrf": token} if token else {})
        assert http.post(path, data=data).status_code == 403
    with db.factory() as session:
        assert len(history(session, journey_id="new_user_coupon")) == 1
        draft = session.query(JourneyDraft).one()
        assert draft.source == EDITED


def test_pages_need_a_login(db) -> None:
    anonymous = console_client(db)
    for path in (DRAFT, VERSIONS, DRAFT + "/simulation"):
        answer = anonymous.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
