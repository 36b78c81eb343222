"""The API process serves the console at /console beside the ingestion API."""

from __future__ import annotations

from console_support import NOW, TOKEN, csrf_of
from fastapi.testclient import TestClient

from api.server import build_app
from config import Settings
from journey_support import publish_shipped
from store.journeys import latest_version


def test_the_api_process_serves_the_console_at_slash_console(db):
    settings = Settings(
        environment="development",
        database_url=db.url,
        admin_token=TOKEN,
        allowed_hosts=["testserver"],  # the test client's Host
    )
    publish_shipped(db.factory, "new_user_coupon", NOW)
    with TestClient(build_app(settings), follow_redirects=False) as http:
        assert http.get("/console/journeys").headers["location"] == "/console/login"
        login = http.post("/console/login", data={"token": TOKEN})
        assert "path=/console" in login.headers["set-cookie"].lower()
        page = http.get("/console/journeys")
        assert page.status_code == 200
        assert 'href="/console/journeys/new_user_coupon"' in page.text
        paused = http.post(
            "/console/journeys/new_user_coupon/pause", data={"csrf": csrf_of(page.text)}
        )
        assert paused.headers["location"] == "/console/journeys/new_user_coupon?did=paused"
        with db.factory() as session:
            assert latest_version(session, journey_id="new_user_coupon").status == "paused"
        # The ingestion API beside it is untouched: JSON errors, the write key.
        assert http.post("/v1/track", json={}).status_code == 401
