"""The journey builder: the page opens on the live version (or the draft), each button posts
the whole form back and the page returns with the change made, problems beside the field
they name and the diagram redrawn; "Save as draft" writes the journey's draft; the forms need
the session's CSRF token and what was typed comes back escaped."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

import pytest
import yaml
from console_support import NOW, console_client, log_in
from fastapi.testclient import TestClient

from journey_support import publish_shipped, publish_text
from journeys.validate import parse_journey, shipped_journey_files
from journeys.yaml_write import dump_journey, leading_comments
from store.models import JourneyDraft

BUILDER = "/console/journeys/cart_abandonment/builder"
SOURCE = next(p for p in shipped_journey_files() if p.stem == "cart_abandonment").read_text()


class _Form(HTMLParser):
    """The fields a browser would post from the page's builder form (no buttons)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._first: str | None = None
        self._textarea: str | None = None
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("action", "").endswith("/builder"):
            self._inside = True
        if not self._inside:
            return
        if tag == "input" and "name" in a:
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select, self._first = a["name"], None
        elif tag == "option" and self._select is not None:
            if self._first is None or "selected" in a:
                self.fields[self._select] = a.get("value", "")
                self._first = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a["name"]
            self.fields[a["name"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.fields[self._textarea] += data


def form_of(page: str) -> dict[str, str]:
    reader = _Form()
    reader.feed(page)
    return reader.fields


def press(http: TestClient, page: str, action: str, *, url: str = BUILDER, **changes: str) -> Any:
    """Post the page's form as a browser would, with ``changes`` typed and ``action``."""
    fields = form_of(page) | changes | {"action": action}
    return http.post(url, data=fields)


def shown_yaml(page: str) -> str:
    found = re.search(r"<pre data-yaml>(.*?)</pre>", page, re.S)
    assert found, page
    return html.unescape(found[1])


def row_field(page: str, path: str, name: str) -> str:
    """The form name of the field ``name`` of the step at ``path``."""
    found = re.search(rf'name="(r\d+\.)path" value="{re.escape(path)}"', page)
    assert found, path
    return found[1] + name


@pytest.fixture
def http(db) -> TestClient:
    client = console_client(db)
    client.headers["x-csrf-for-test"] = log_in(client)
    publish_shipped(db.factory, "cart_abandonment", NOW)
    return client


def test_the_builder_opens_on_the_live_version_and_saving_it_unchanged_is_the_same_yaml(
    db, http
) -> None:
    page = http.get(BUILDER)
    assert page.status_code == 200
    expected = dump_journey(yaml.safe_load(SOURCE), header=leading_comments(SOURCE))
    assert shown_yaml(page.text) == expected
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="diagram"' in page.text
    assert 'data-problems="0"' in page.text
    # Apply with nothing typed, then save: the draft is the builder's YAML, byte for byte.
    again = press(http, page.text, "apply")
    assert again.status_code == 200 and shown_yaml(again.text) == expected
    saved = press(http, again.text, "save")
    assert saved.status_code == 303 and saved.headers["location"].endswith("/builder?did=saved")
    with db.factory() as session:
        draft = session.query(JourneyDraft).one()
    assert draft.source == expected
    assert parse_journey(draft.source) == parse_journey(SOURCE)
    # The builder now opens on the draft, and links to the draft page to publish it.
    shown = http.get(BUILDER + "?did=saved").text
    assert "Draft saved." in shown and 'href="/console/journeys/cart_abandonment/draft"' in shown
    assert http.get("/console/journeys/no_such/builder").status_code == 404


def test_add_edit_move_and_delete_steps_redraw_the_yaml_and_the_diagram(db, http) -> None:
    page = http.get(BUILDER).text
    # Add a send step at the end of the branch's `then`, and fill in its template.
    added = press(http, page, "add:steps[3].then:1", **{"add_type:steps[3].then:1": "send"})
    assert added.status_code == 200
    assert 'data-row="steps[3].then[1]"' in added.text
    template = row_field(added.text, "steps[3].then[1]", "template")
    filled = press(http, added.text, "apply", **{template: "cart_reminder_push"})
    journey = parse_journey(shown_yaml(filled.text))
    then = journey.steps[3].then  # type: ignore[union-attr]
    assert [(s.id, s.type) for s in then] == [("low_stock_sms", "send"), ("send_1", "send")]
    assert "send_1" in filled.text.split("<h2>Diagram</h2>")[1]  # drawn
    # Edit a setting and a step's field.
    opened = press(http, filled.text, "edit:steps[2]")
    duration = row_field(opened.text, "steps[2]", "duration")
    edited = press(http, opened.text, "apply", **{"j.holdout": "20", duration: "22h"})
    journey = parse_journey(shown_yaml(edited.text))
    assert journey.holdout == 20 and journey.steps[2].duration.total_seconds() == 22 * 3600  # type: ignore[union-attr]
    # Move the first wait below the push, then delete the push.
    moved = press(http, edited.text, "down:steps[0]")
    assert [s.id for s in parse_journey(shown_yaml(moved.text)).steps[:2]] == [
        "reminder_push",
        "wait_1h",
    ]
    gone = press(http, moved.text, "delete:steps[0]")
    assert [s.id for s in parse_journey(shown_yaml(gone.text)).steps][:2] == ["wait_1h", "wait_24h"]


@pytest.mark.parametrize(
    "kind",
    ["send", "wait", "wait_until", "wait_for", "branch", "issue_coupon", "exit"],
)
def test_each_step_type_can_be_added(db, http, kind) -> None:
    page = http.get(BUILDER).text
    added = press(http, page, "add:steps:4", **{"add_type:steps:4": kind})
    assert added.status_code == 200
    data = yaml.safe_load(shown_yaml(added.text))
    assert data["steps"][4]["type"] == kind and data["steps"][4]["id"] == f"{kind}_1"
    assert 'data-row="steps[4]"' in added.text


def test_a_nested_branch_is_built_with_then_and_else(db, http) -> None:
    page = http.get(BUILDER).text
    branch = press(http, page, "add:steps:4", **{"add_type:steps:4": "branch"})
    context = row_field(branch.text, "steps[4]", "context")
    value = context.replace("context", "value")
    made = press(
        http, branch.text, "apply", **{context: "trigger.properties.low_stock", value: "false"}
    )
    then = press(http, made.text, "add:steps[4].then:0", **{"add_type:steps[4].then:0": "exit"})
    both = press(http, then.text, "add:steps[4].else:0", **{"add_type:steps[4].else:0": "wait"})
    journey = parse_journey(shown_yaml(both.text))
    built = journey.steps[4]
    assert built.type == "branch"
    assert [s.type for s in built.then] == ["exit"] and [s.type for s in built.else_] == ["wait"]


def test_an_invalid_field_shows_its_problem_beside_that_row(db, http) -> None:
    page = http.get(BUILDER).text
    opened = press(http, page, "edit:steps[1]")
    template = row_field(opened.text, "steps[1]", "template")
    wrong = press(http, opened.text, "apply", **{template: "nope"})
    row = re.search(r'<div class="card" data-row="steps\[1\]">.*?</div>\s*</div>', wrong.text, re.S)
    assert row, wrong.text
    found = re.search(r'<tr data-field="template">.*?</tr>', row[0], re.S)
    assert found and "unknown template &#39;nope&#39;" in found[0]
    assert 'data-problem-field="steps[1].template"' in found[0]
    # A setting's problem sits beside the setting; a field that is not YAML beside its field.
    bad = press(http, wrong.text, "apply", **{"j.holdout": "90"})
    setting = re.search(r'<tr data-setting="holdout">.*?</tr>', bad.text, re.S)
    assert setting and 'data-problem-field="holdout"' in setting[0]
    broken = press(http, bad.text, "apply", **{"j.goal.where": "{total"})
    assert broken.status_code == 400
    where = re.search(r'<tr data-setting="goal.where">.*?</tr>', broken.text, re.S)
    assert where and "not valid YAML" in where[0] and 'value="{total"' in where[0]


def test_a_forged_or_missing_csrf_token_is_refused(db, http) -> None:
    fields = form_of(http.get(BUILDER).text) | {"action": "save"}
    assert http.post(BUILDER, data=fields | {"csrf": "forged"}).status_code == 403
    del fields["csrf"]
    assert http.post(BUILDER, data=fields).status_code == 403
    with db.factory() as session:
        assert session.query(JourneyDraft).count() == 0


def test_what_was_typed_comes_back_escaped(db, http) -> None:
    page = http.get(BUILDER).text
    opened = press(http, page, "edit:steps[1]")
    template = row_field(opened.text, "steps[1]", "template")
    typed = '"><script>alert(1)</script>'
    shown = press(http, opened.text, "apply", **{"j.name": typed, template: typed})
    assert "<script>" not in shown.text
    assert "&#34;&gt;&lt;script&gt;" in shown.text or "&quot;&gt;&lt;script&gt;" in shown.text
    data = yaml.safe_load(shown_yaml(shown.text))
    assert data["name"] == typed and data["steps"][1]["template"] == typed


def test_the_builder_needs_a_login(db) -> None:
    client = console_client(db)
    assert client.get(BUILDER).status_code == 303


@pytest.mark.parametrize("path", shipped_journey_files(), ids=lambda p: p.stem)
def test_every_shipped_journey_comes_back_unchanged_from_its_form(db, http, path) -> None:
    url = f"/console/journeys/{path.stem}/builder"
    text = path.read_text(encoding="utf-8")
    expected = dump_journey(yaml.safe_load(text), header=leading_comments(text))
    page = http.get(url).text
    for opened in ("apply", "edit:steps[0]", "edit:steps[1]", "edit:steps[3]"):
        fields = form_of(page) | {"action": opened}
        page = http.post(url, data=fields).text
        assert shown_yaml(page) == expected, opened


def card(page: str, path: str) -> str:
    """The HTML of the step at ``path`` (its own card, nested steps' cards aside)."""
    start = rf'<div class="card" data-row="{re.escape(path)}">'
    found = re.search(rf'{start}.*?(?=<div class="card"|value="save")', page, re.S)
    assert found, page
    return found[0]


def beside(page: str, path: str, where: str) -> str:
    """The table row ``where`` (``data-field="timeout"``, ``data-variant="1"``) of a step."""
    found = re.search(rf"<tr {where}>.*?</tr>", card(page, path), re.S)
    assert found, card(page, path)
    return found[0]


def test_a_step_type_changes_in_place_keeping_its_id_and_position(db, http) -> None:
    page = http.get(BUILDER).text
    # The 23h wait becomes a wait for an event: same id, same place, its duration gone, and
    # the new type's fields shown open with what they lack beside them.
    changed = press(http, page, "retype:steps[2]", **{"type:steps[2]": "wait_for"})
    assert changed.status_code == 200
    data = yaml.safe_load(shown_yaml(changed.text))
    assert data["steps"][2] == {"id": "wait_24h", "type": "wait_for"}
    assert [s["id"] for s in data["steps"]] == ["wait_1h", "reminder_push", "wait_24h", "low_stock"]
    for name in ("event", "timeout"):
        row = beside(changed.text, "steps[2]", f'data-field="{name}"')
        assert f'data-problem-field="steps[2].{name}"' in row and f"needs `{name}:`" in row
    assert 'data-field="duration"' not in card(changed.text, "steps[2]")
    event = row_field(changed.text, "steps[2]", "event")
    filled = press(
        http, changed.text, "apply", **{event: "order_placed", event[:-5] + "timeout": "1d"}
    )
    assert 'data-problems="0"' in filled.text
    assert parse_journey(shown_yaml(filled.text)).steps[2].type == "wait_for"
    # The branch becomes an exit: its `if` and the steps nested in then/else cannot stay.
    # A type picked and the form applied with any button changes it too.
    exited = press(http, filled.text, "apply", **{"type:steps[3]": "exit"})
    data = yaml.safe_load(shown_yaml(exited.text))
    assert data["steps"][3] == {"id": "low_stock", "type": "exit"}
    assert 'data-row="steps[3].then[0]"' not in exited.text
    # A send becomes a wait: channel and template go, the id stays.
    waited = press(http, exited.text, "retype:steps[1]", **{"type:steps[1]": "wait"})
    step = yaml.safe_load(shown_yaml(waited.text))["steps"][1]
    assert step == {"id": "reminder_push", "type": "wait"}
    assert 'data-problem-field="steps[1].duration"' in beside(
        waited.text, "steps[1]", 'data-field="duration"'
    )


AB_URL = "/console/journeys/ab_check/builder"
AB = """\
# An A/B test of two SMS wordings.
id: ab_check
name: A/B check
trigger: {event: product_viewed}
goal: {event: order_placed, within: 3d}
steps:
  - id: nudge
    type: send
    channel: sms
    variants:
      - {id: plain, template: cart_low_stock_sms}
      - {id: urgent, template: sale_preheat_sms, weight: 3}
  - {id: pause, type: wait, duration: 1h}
"""


@pytest.fixture
def ab(db, http) -> TestClient:
    publish_text(db.factory, AB, NOW)
    return http


def variants_of(page: str) -> list[dict[str, Any]]:
    variants: list[dict[str, Any]] = yaml.safe_load(shown_yaml(page))["steps"][0]["variants"]
    return variants


def test_a_journey_with_variants_comes_back_unchanged_from_its_form(db, ab) -> None:
    expected = dump_journey(yaml.safe_load(AB), header=leading_comments(AB))
    page = ab.get(AB_URL).text
    assert shown_yaml(page) == expected
    for action in ("apply", "edit:steps[0]", "apply", "edit:steps[1]"):
        page = press(ab, page, action, url=AB_URL).text
        assert shown_yaml(page) == expected, action
    # Opened, each variant is a row of its own.
    page = press(ab, page, "edit:steps[0]", url=AB_URL).text
    urgent = beside(page, "steps[0]", 'data-variant="1"')
    assert 'value="urgent"' in urgent and 'value="sale_preheat_sms"' in urgent
    assert 'value="3"' in urgent
    saved = press(ab, page, "save", url=AB_URL)
    assert saved.status_code == 303
    with db.factory() as session:
        assert session.query(JourneyDraft).one().source == expected


def test_variants_are_added_edited_and_removed_as_rows(db, ab) -> None:
    page = press(ab, ab.get(AB_URL).text, "edit:steps[0]", url=AB_URL).text
    added = press(ab, page, "add_variant:steps[0]", url=AB_URL)
    assert variants_of(added.text)[2] == {"id": "a", "template": "sale_preheat_sms"}
    name = row_field(added.text, "steps[0]", "variants.2.id")
    edited = press(
        ab,
        added.text,
        "apply",
        url=AB_URL,
        **{name: "bold", name[:-2] + "weight": "2", name[:-2] + "template": "cart_low_stock_sms"},
    )
    assert variants_of(edited.text) == [
        {"id": "plain", "template": "cart_low_stock_sms"},
        {"id": "urgent", "template": "sale_preheat_sms", "weight": 3},
        {"id": "bold", "template": "cart_low_stock_sms", "weight": 2},
    ]
    assert 'data-problems="0"' in edited.text
    removed = press(ab, edited.text, "remove_variant:steps[0]:0", url=AB_URL)
    assert [v["id"] for v in variants_of(removed.text)] == ["urgent", "bold"]
    assert "weight: 2" in shown_yaml(removed.text)
    # With the last one removed, the step needs its one template again, and says so.
    once = press(ab, removed.text, "remove_variant:steps[0]:0", url=AB_URL)
    none = press(ab, once.text, "remove_variant:steps[0]:0", url=AB_URL)
    assert "variants" not in yaml.safe_load(shown_yaml(none.text))["steps"][0]
    assert 'data-problem-field="steps[0].template"' in none.text


def test_a_plain_send_becomes_an_ab_test_of_its_template(db, http) -> None:
    page = http.get(BUILDER).text
    split = press(http, page, "add_variant:steps[1]")
    step = yaml.safe_load(shown_yaml(split.text))["steps"][1]
    assert "template" not in step
    assert step["variants"] == [
        {"id": "a", "template": "cart_reminder_push"},
        {"id": "b", "template": "cart_reminder_push"},
    ]
    assert 'data-problems="0"' in split.text


def test_a_variants_problem_shows_beside_its_row(db, ab) -> None:
    page = press(ab, ab.get(AB_URL).text, "edit:steps[0]", url=AB_URL).text
    weight = row_field(page, "steps[0]", "variants.1.weight")
    template = row_field(page, "steps[0]", "variants.0.template")
    unknown = press(ab, page, "apply", url=AB_URL, **{template: "no_such_sms"})
    first = beside(unknown.text, "steps[0]", 'data-variant="0"')
    assert "unknown template &#39;no_such_sms&#39;" in first
    assert 'data-problem-field="steps[0].variants[0].template"' in first
    assert "no_such_sms&#39;" not in beside(unknown.text, "steps[0]", 'data-variant="1"')
    wrong = press(
        ab, unknown.text, "apply", url=AB_URL, **{template: "cart_low_stock_sms", weight: "0"}
    )
    assert wrong.status_code == 200
    first = beside(wrong.text, "steps[0]", 'data-variant="0"')
    second = beside(wrong.text, "steps[0]", 'data-variant="1"')
    assert 'data-problem-field="steps[0].variants[1].weight"' in second
    assert "greater than or equal to 1" in second and "data-problem-field" not in first
    # A weight that is not YAML is refused beside its row, as typed.
    broken = press(ab, wrong.text, "apply", url=AB_URL, **{weight: "[2"})
    assert broken.status_code == 400
    second = beside(broken.text, "steps[0]", 'data-variant="1"')
    assert "not valid YAML" in second and 'value="[2"' in second
