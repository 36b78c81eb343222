"""The audience builder in the console: the count and sample it shows are what
``lifecycle audiences count/preview`` say, a problem shows on its row, saving makes versions
that the name then means, a shipped name is refused, forged forms are refused, and what a
marketer typed comes back escaped."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from console_support import NOW
from test_data_pages import rows

from audiences.saved import named_audience
from cli import main
from journey_support import store_event
from store.db import transaction
from store.models import User

# Two rows: tagged vip, and not more than one order in the last 30 days.
FORM = {
    "combine": "all",
    "r0.kind": "tag",
    "r0.value": "vip",
    "r1.kind": "event",
    "r1.not": "1",
    "r1.name": "order_placed",
    "r1.count_op": "at_least",
    "r1.count": "2",
    "r1.within": "30d",
}
RULE = "all: [{tag: vip}, {not: {event: {name: order_placed, within: 30d, at_least: 2}}}]"


def person(db, user_id: str, *, tags: list[str] | None = None, **traits: str) -> None:
    at = NOW - timedelta(days=40)
    with transaction(db.factory) as session:
        session.add(User(id=user_id, created_at=at, updated_at=at, traits=traits, tags=tags or []))


def seed(db) -> None:
    """vip-0..vip-4 tagged vip (vip-3 and vip-4 with two recent orders), plain-0..2 not."""
    for i in range(5):
        person(db, f"vip-{i}", tags=["vip"])
    for i in range(3):
        person(db, f"plain-{i}")
    for user_id in ("vip-3", "vip-4"):
        for hours in (5, 50):
            store_event(db.factory, user_id, "order_placed", NOW - timedelta(hours=hours))


def post(http: Any, path: str, csrf: str, **fields: str) -> Any:
    return http.post(f"/console{path}", data={"csrf": csrf} | fields)


def shown_count(page: str) -> int:
    found = re.search(r"<b data-count>(\d+)</b>", page)
    assert found, "no count on the page"
    return int(found.group(1))


def shown_yaml(page: str) -> str:
    found = re.search(r"<textarea[^>]*data-yaml>(.*?)</textarea>", page, re.S)
    assert found
    return unescape(found.group(1))


def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db, *argv: str) -> str:
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", db.url)
    code = main(["audiences", *argv, "--now", NOW.isoformat()])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_count_and_sample_are_what_the_command_line_says(db, admin, capsys, monkeypatch):
    http, csrf = admin
    seed(db)
    page = post(http, "/audiences/new", csrf, action="count", **FORM)
    assert page.status_code == 200
    members = rows(page.text, "member")
    assert shown_count(page.text) == 3
    assert list(members) == ["vip-0", "vip-1", "vip-2"]
    assert "✓ tagged vip" in members["vip-0"]
    assert "✓ not (order_placed at least 2× within 30d)" in members["vip-0"]

    written = shown_yaml(page.text)
    assert cli(capsys, monkeypatch, db, "count", written) == "3\n"
    preview = cli(capsys, monkeypatch, db, "preview", written)
    assert "3 member(s)" in preview
    assert [
        line.strip() for line in preview.splitlines()[1:] if not line.startswith("      ")
    ] == list(members)
    assert cli(capsys, monkeypatch, db, "count", RULE) == "3\n"


# A good first row and a second whose value is not the number its type says.
BAD_SECOND_ROW = {
    "combine": "all",
    "r0.kind": "tag",
    "r0.value": "vip",
    "r1.kind": "trait",
    "r1.name": "age",
    "r1.op": "gte",
    "r1.value": "old",
    "r1.type": "number",
}


def test_rows_are_added_and_removed_and_a_problem_shows_on_its_row(db, admin):
    http, csrf = admin
    page = post(http, "/audiences/new", csrf, action="add", add_kind="trait", combine="all")
    assert 'name="r0.kind" value="trait"' in page.text
    page = post(
        http,
        "/audiences/new",
        csrf,
        action="count",
        **BAD_SECOND_ROW,
    )
    errors = dict(re.findall(r'data-row-error="(\d+)">([^<]*)<', page.text))
    assert errors == {"1": "trait.gte: expected a number, got &#39;old&#39;"}
    assert "Fix the rule to see who matches." in page.text

    page = post(
        http,
        "/audiences/new",
        csrf,
        action="remove:1",
        **BAD_SECOND_ROW,
    )
    assert "data-row-error" not in page.text
    assert 'name="r1.kind"' not in page.text
    assert shown_yaml(page.text) == "all:\n- tag: vip\n"


def test_saving_twice_makes_two_versions_and_the_name_means_the_latest(
    db, admin, capsys, monkeypatch
):
    http, csrf = admin
    seed(db)
    first = post(
        http, "/audiences/new", csrf, action="save", name="vip_quiet", note="first cut", **FORM
    )
    assert first.status_code == 303
    assert first.headers["location"] == "/console/audiences/vip_quiet?did=saved-v1"

    edit = http.get("/console/audiences/vip_quiet/edit")
    assert edit.status_code == 200
    assert 'name="r1.not" value="1" checked' in edit.text
    only_tag = {k: v for k, v in FORM.items() if not k.startswith("r1.")}
    second = post(
        http, "/audiences/vip_quiet/edit", csrf, action="save", note="all vips", **only_tag
    )
    assert second.headers["location"] == "/console/audiences/vip_quiet?did=saved-v2"

    page = http.get(second.headers["location"]).text
    assert "Saved as version 2" in page
    assert list(rows(page, "version")) == ["2", "1"]
    assert "first cut" in rows(page, "version")["1"]
    assert len(rows(page, "member")) == 5
    listed = rows(http.get("/console/audiences").text, "audience")
    assert "vip_quiet" in listed and listed["vip_quiet"].endswith(" 5")

    # The name is the latest version wherever it is looked up.
    with db.factory() as session:
        found = named_audience(session, "vip_quiet")
        assert found is not None and found.count(session, now=NOW) == 5
    assert cli(capsys, monkeypatch, db, "count", "vip_quiet") == "5\n"
    assert "vip_quiet: 5 member(s)" in cli(capsys, monkeypatch, db, "preview", "vip_quiet")


@pytest.mark.parametrize(
    ("name", "says"), [("new_users_7d", "is a shipped audience"), ("VIP!", "lower-case")]
)
def test_a_shipped_or_malformed_name_is_refused(db, admin, name, says):
    http, csrf = admin
    answer = post(http, "/audiences/new", csrf, action="save", name=name, **FORM)
    assert answer.status_code == 400
    assert says in unescape(re.search(r"data-name-error>([^<]*)<", answer.text).group(1))
    with db.factory() as session:
        assert named_audience(session, "vip_quiet") is None
    assert rows(http.get("/console/audiences/new_users_7d").text, "version") == {}


def test_a_forged_or_missing_csrf_token_is_refused(db, admin):
    http, _ = admin
    for path in ("/audiences/new", "/audiences/anything/edit"):
        for csrf in ("forged", ""):
            answer = post(http, path, csrf, action="save", name="vip_quiet", **FORM)
            assert answer.status_code == 403, (path, csrf)
    with db.factory() as session:
        assert named_audience(session, "vip_quiet") is None
    assert http.get("/console/audiences/new").status_code == 200


def test_what_a_marketer_typed_comes_back_escaped(db, admin):
    http, csrf = admin
    evil = '"><script>alert(1)</script>'
    person(db, "u-1", city=evil)
    fields = {
        "combine": "all",
        "r0.kind": "trait",
        "r0.name": "city",
        "r0.op": "eq",
        "r0.value": evil,
    }
    page = post(http, "/audiences/new", csrf, action="count", **fields).text
    assert "<script>" not in page
    assert shown_count(page) == 1
    assert "&lt;script&gt;" in page
    saved = post(http, "/audiences/new", csrf, action="save", name="evil", **fields)
    assert saved.status_code == 303
    page = http.get("/console/audiences/evil").text
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<script>" not in http.get("/console/audiences/evil/edit").text


def test_pages_need_a_login(db, http):
    assert http.get("/console/audiences/new").status_code == 303
    assert http.get("/console/audiences/vip_quiet/edit").status_code == 303


def test_a_shipped_rule_with_a_form_starts_a_new_audience(db, admin):
    http, _ = admin
    page = http.get("/console/audiences/high_value").text
    assert 'href="/console/audiences/high_value/edit"' in page
    start = http.get("/console/audiences/high_value/edit").text
    assert 'action="/console/audiences/new"' in start
    assert 'name="r0.kind" value="event"' in start and 'name="r1.kind" value="spent"' in start
    # Nested groups have no form: the shipped page offers no builder.
    assert "/edit" not in http.get("/console/audiences/dormant_30d").text
    assert http.get("/console/audiences/dormant_30d/edit").status_code == 404
    assert http.get("/console/audiences/nobody/edit").status_code == 404
