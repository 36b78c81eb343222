"""Journeys in the console: the list, the diagram with live counts, publish and pause."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

from console_support import NOW, seed_journey
from set_aside_support import JOURNEY as SET_ASIDE_JOURNEY
from set_aside_support import USERS
from set_aside_support import seed as set_aside_seed

from journey_support import publish_shipped, publish_text
from journeys.validate import shipped_journey_files
from store.journeys import latest_version

SVG = "{http://www.w3.org/2000/svg}"


def diagram(page: str) -> ET.Element:
    match = re.search(r'<svg[^>]*class="diagram".*?</svg>', page, re.S)
    assert match, "no diagram on the page"
    return ET.fromstring(match.group(0))


def node_text(svg: ET.Element, **attrs: str) -> list[str]:
    """The lines of text of the one node whose attributes include ``attrs``."""
    found = [
        g
        for g in svg.iter(f"{SVG}g")
        if all(g.get(k.replace("_", "-")) == v for k, v in attrs.items())
    ]
    assert len(found) == 1, f"{len(found)} nodes match {attrs}"
    return [t.text or "" for t in found[0].iter(f"{SVG}text")]


def shipped_text(journey_id: str) -> str:
    return next(p for p in shipped_journey_files() if p.stem == journey_id).read_text()


def latest(db, journey_id: str):
    with db.factory() as session:
        return latest_version(session, journey_id=journey_id)


def test_the_list_shows_each_journey_with_its_status_and_version(db, admin):
    http, csrf = admin
    publish_shipped(db.factory, "new_user_coupon", NOW)
    publish_shipped(db.factory, "cart_abandonment", NOW)
    http.post("/console/journeys/cart_abandonment/pause", data={"csrf": csrf})
    page = http.get("/console/journeys").text

    def row(journey_id: str) -> str:
        match = re.search(rf'<tr data-journey="{journey_id}">(.*?)</tr>', page, re.S)
        assert match, journey_id
        return re.sub(r"\s+", " ", match.group(1))

    assert '<span class="pill published">live</span>' in row("new_user_coupon")
    assert '<td class="num">1</td>' in row("new_user_coupon")
    assert '<span class="pill paused">paused</span>' in row("cart_abandonment")
    # Shipped but never published: offered for publishing.
    assert "not published" in row("dormancy_wakeup")
    assert 'name="shipped" value="dormancy_wakeup"' in row("dormancy_wakeup")


def test_the_diagram_draws_every_step_with_counts_from_the_ledger(db, admin):
    http, _ = admin
    seed_journey(db)
    svg = diagram(http.get("/console/journeys/new_user_coupon").text)
    steps = [g.get("data-step") for g in svg.iter(f"{SVG}g") if g.get("data-step")]
    assert steps == [
        "welcome_coupon",
        "welcome_sms",
        "wait_day2",
        "day2_push",
        "wait_day6",
        "day6_email",
    ]
    assert node_text(svg, data_step="welcome_sms") == [
        "send sms · welcome_sms",
        "new_user_welcome_sms",
        "sent 2 · skipped 2 · deferred 1",
    ]
    assert node_text(svg, data_step="day2_push")[-1] == "sent 0 · skipped 0 · deferred 0"
    assert node_text(svg, data_step="wait_day2")[0] == "wait 2d"
    assert node_text(svg, **{"class": "node node-start"}) == ["on user_signed_up", "entered 5"]
    assert node_text(svg, **{"class": "node node-end"}) == [
        "goal: order_placed within 7d",
        "converted 1 · running 4",
    ]


def test_a_branch_is_drawn_with_both_paths(db, admin):
    http, _ = admin
    publish_shipped(db.factory, "cart_abandonment", NOW)
    svg = diagram(http.get("/console/journeys/cart_abandonment").text)
    assert node_text(svg, data_step="low_stock")[0] == "if trigger.properties.low_stock = true"
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "edge-label"]
    assert labels == ["then", "else"]

    def x_of(step: str) -> float:
        (g,) = [g for g in svg.iter(f"{SVG}g") if g.get("data-step") == step]
        return float(g.find(f"{SVG}rect").get("x"))

    # The two paths side by side: then on the left, else (coupon, then SMS) on the right.
    assert x_of("low_stock_sms") < x_of("low_stock") < x_of("cart_coupon")
    assert x_of("cart_coupon") == x_of("coupon_sms")
    # One arrow into each of the 7 steps and the end from above, the two paths both joining
    # the end node.
    edges = [p for p in svg.iter(f"{SVG}path") if p.get("class") == "edge"]
    assert len(edges) == 9


def test_pause_and_resume_buttons_change_the_journey_status(db, admin):
    http, csrf = admin
    publish_shipped(db.factory, "new_user_coupon", NOW)
    page = http.get("/console/journeys/new_user_coupon").text
    assert 'action="/console/journeys/new_user_coupon/pause"' in page

    answer = http.post("/console/journeys/new_user_coupon/pause", data={"csrf": csrf})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/journeys/new_user_coupon?did=paused"
    assert latest(db, "new_user_coupon").status == "paused"
    page = http.get(answer.headers["location"]).text
    assert "Paused: sends are held until the journey is resumed." in page
    assert 'action="/console/journeys/new_user_coupon/resume"' in page

    http.post("/console/journeys/new_user_coupon/resume", data={"csrf": csrf})
    assert latest(db, "new_user_coupon").status == "published"


def test_pausing_a_journey_never_published_is_a_404(db, admin):
    http, csrf = admin
    answer = http.post("/console/journeys/nope/pause", data={"csrf": csrf})
    assert answer.status_code == 404
    assert "No journey &#39;nope&#39; has been published." in answer.text


def test_publishing_the_shipped_yaml_makes_version_one_then_is_unchanged(db, admin):
    http, csrf = admin
    answer = http.post(
        "/console/journeys/publish", data={"csrf": csrf, "shipped": "dormancy_wakeup"}
    )
    assert answer.headers["location"] == "/console/journeys/dormancy_wakeup?did=published"
    assert latest(db, "dormancy_wakeup").version == 1
    again = http.post(
        "/console/journeys/publish", data={"csrf": csrf, "shipped": "dormancy_wakeup"}
    )
    assert again.headers["location"] == "/console/journeys/dormancy_wakeup?did=unchanged"
    assert latest(db, "dormancy_wakeup").version == 1


def test_publishing_pasted_yaml_makes_a_new_live_version(db, admin):
    http, csrf = admin
    publish_shipped(db.factory, "new_user_coupon", NOW - timedelta(days=1))
    http.post("/console/journeys/new_user_coupon/pause", data={"csrf": csrf})
    text = shipped_text("new_user_coupon").replace("duration: 2d", "duration: 3d")
    answer = http.post(
        "/console/journeys/publish",
        data={"csrf": csrf, "yaml": text, "journey": "new_user_coupon"},
    )
    assert answer.status_code == 303
    row = latest(db, "new_user_coupon")
    assert (row.version, row.status, row.source) == (2, "published", text)
    page = http.get("/console/journeys/new_user_coupon").text
    assert node_text(diagram(page), data_step="wait_day2")[0] == "wait 3d"


def test_invalid_yaml_is_refused_with_the_field_and_nothing_is_published(db, admin):
    http, csrf = admin
    publish_shipped(db.factory, "new_user_coupon", NOW)
    text = shipped_text("new_user_coupon").replace(
        "template: new_user_welcome_sms", "template: no_such_template"
    )
    answer = http.post(
        "/console/journeys/publish",
        data={"csrf": csrf, "yaml": text, "journey": "new_user_coupon"},
    )
    assert answer.status_code == 400
    assert (
        "&lt;pasted YAML&gt;: steps[1].template: unknown template &#39;no_such_template&#39;"
        in (answer.text)
    )
    assert "template: no_such_template" in answer.text  # the pasted text is kept to fix
    assert latest(db, "new_user_coupon").version == 1

    broken = http.post(
        "/console/journeys/publish",
        data={"csrf": csrf, "yaml": "id: x\nsteps: [", "journey": "new_user_coupon"},
    )
    assert broken.status_code == 400
    assert "&lt;pasted YAML&gt;:" in broken.text and "not valid YAML" in broken.text


WAIT_FOR = """
id: browse_nudge
name: Browse nudge
trigger: {event: user_signed_up}
steps:
  - id: wait_order
    type: wait_for
    event: order_placed
    timeout: 1d
    on_event:
      - id: done
        type: exit
    on_timeout:
      - id: nudge
        type: send
        channel: push
        template: new_user_reminder_push
  - id: last_call
    type: send
    channel: email
    template: new_user_last_chance_email
"""


def test_a_wait_for_forks_on_event_and_timeout_and_an_exit_ends_its_path(db, admin):
    http, _ = admin
    publish_text(db.factory, WAIT_FOR, NOW)
    svg = diagram(http.get("/console/journeys/browse_nudge").text)
    assert node_text(svg, data_step="wait_order") == [
        "wait for order_placed",
        "wait_order · timeout 1d",
    ]
    assert node_text(svg, data_step="done", **{"class": "node node-exit"}) == ["exit", "done"]
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "edge-label"]
    assert labels == ["event", "timeout"]
    # Arrows: start → wait_order → done | nudge → last_call → end. Nothing leaves the exit.
    edges = [p for p in svg.iter(f"{SVG}path") if p.get("class") == "edge"]
    assert len(edges) == 5


def test_a_shipped_journey_not_yet_published_is_shown_with_its_schedule(admin):
    http, _ = admin
    page = http.get("/console/journeys/dormancy_wakeup").text
    assert '<span class="pill ">not published</span>' in page
    assert 'name="shipped" value="dormancy_wakeup"' in page
    start = node_text(diagram(page), **{"class": "node node-start"})
    assert start == ["schedule 0 10 * * * · dormant_30d", "entered 0"]
    assert http.get("/console/journeys/not_a_journey").status_code == 404


def test_the_journey_and_its_report_say_how_many_of_the_global_control_were_set_aside(db, admin):
    http, _ = admin
    population = set_aside_seed(db)
    said = f"global control: {len(population.control)} set aside"

    journey = http.get(f"/console/journeys/{SET_ASIDE_JOURNEY}").text
    assert re.search(r'<p id="set-aside"[^>]*>' + said, journey)
    report = http.get(f"/console/reports/{SET_ASIDE_JOURNEY}").text
    assert re.search(r'<p id="set-aside"[^>]*>' + said, report)
    rows = dict(
        re.findall(r'<tr data-group="(\w+)"><td>\w+</td><td class="num">(\d+)</td>', report)
    )
    assert rows == {
        "treatment": str(len(population.treatment)),
        "holdout": str(len(population.holdout)),
    }
    assert f"entered {len(USERS)} ·" in report
    assert 'id="split" class="error"' not in report  # the split checked is the arms' own


def test_a_journey_without_global_control_entrants_says_nothing_of_them(db, admin):
    http, _ = admin
    publish_shipped(db.factory, "new_user_coupon", NOW)

    assert 'id="set-aside"' not in http.get("/console/journeys/new_user_coupon").text
    assert 'id="set-aside"' not in http.get("/console/reports/new_user_coupon").text
