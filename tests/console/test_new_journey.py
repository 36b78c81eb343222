"""New journey: the Journeys page asks for an id and opens the builder on an empty journey;
nothing is stored until its draft is saved, and an id that is unusable or taken is refused."""

from __future__ import annotations

from console_support import console_client
from sqlalchemy import func, select

from store.models import JourneyDraft


def test_the_builder_opens_on_an_empty_journey_and_stores_nothing(db, admin) -> None:
    http, _ = admin
    assert 'action="/console/journeys/new"' in http.get("/console/journeys").text
    page = http.get("/console/journeys/new", params={"id": "welcome_sms"})
    assert page.status_code == 200
    assert 'name="j.id" value="welcome_sms"' in page.text
    assert 'name="j.name" value="Welcome sms"' in page.text
    assert 'action="/console/journeys/welcome_sms/builder"' in page.text
    with db.factory() as session:
        assert session.scalar(select(func.count()).select_from(JourneyDraft)) == 0
    # The page of a journey keeps its own path.
    assert http.get("/console/journeys/cart_abandonment").status_code == 200


def test_an_unusable_or_taken_id_is_refused(db, admin) -> None:
    http, _ = admin
    for bad in ("", "Welcome", "new", "1st", "a-b"):
        page = http.get("/console/journeys/new", params={"id": bad})
        assert page.status_code == 400, bad
        assert "lower-case letters, digits and" in page.text
    taken = http.get("/console/journeys/new", params={"id": "cart_abandonment"})
    assert taken.status_code == 400
    assert "exists already" in taken.text


def test_it_needs_a_login(db) -> None:
    page = console_client(db).get("/console/journeys/new?id=x", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].endswith("/console/login")
