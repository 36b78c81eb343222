"""Login by the admin token, the session cookie, and CSRF on every state-changing form."""

from __future__ import annotations

from datetime import timedelta

from console_support import NOW, TOKEN, console_client, log_in

from console.auth import SessionSigner
from journey_support import publish_shipped
from store.journeys import latest_version

PAGES = [
    "/console/journeys",
    "/console/journeys/new_user_coupon",
    "/console/audiences",
    "/console/audiences/new_users_7d",
    "/console/messages",
    "/console/users/u1",
    "/console/reports",
    "/console/reports/new_user_coupon",
]


def status_of(db, journey_id: str = "new_user_coupon") -> str:
    with db.factory() as session:
        row = latest_version(session, journey_id=journey_id)
        assert row is not None
        return row.status


def test_every_page_sends_a_stranger_to_the_login(http):
    for path in PAGES:
        answer = http.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/console/login"


def test_a_wrong_token_is_refused_and_sets_no_cookie(http):
    answer = http.post("/console/login", data={"token": "not-it"})
    assert answer.status_code == 401
    assert "That is not the admin token." in answer.text
    assert "set-cookie" not in answer.headers
    assert http.get("/console/journeys").status_code == 303


def test_the_right_token_opens_a_strict_http_only_session(http):
    answer = http.post("/console/login", data={"token": TOKEN})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/journeys"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/console" in cookie
    page = http.get("/console/journeys")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_a_forged_or_foreign_cookie_is_no_session(db):
    http = console_client(db)
    cookie, _ = SessionSigner("some-other-token").new_cookie(now=NOW)
    http.cookies.set("lifecycle_console", cookie, path="/console")
    assert http.get("/console/journeys").status_code == 303
    mine, _ = SessionSigner(TOKEN).new_cookie(now=NOW)
    body, _, signature = mine.rpartition(".")
    http.cookies.set("lifecycle_console", body + "x." + signature, path="/console")
    assert http.get("/console/journeys").status_code == 303
    http.cookies.set("lifecycle_console", mine, path="/console")
    assert http.get("/console/journeys").status_code == 200


def test_a_session_ends_after_its_lifetime():
    signer = SessionSigner(TOKEN)
    cookie, session = signer.new_cookie(now=NOW)
    assert signer.read(cookie, now=NOW + timedelta(hours=11)) == session
    assert signer.read(cookie, now=NOW + timedelta(hours=13)) is None


def test_a_post_without_a_session_changes_nothing(db, http):
    publish_shipped(db.factory, "new_user_coupon", NOW)
    answer = http.post("/console/journeys/new_user_coupon/pause", data={"csrf": "x"})
    assert answer.status_code == 303
    assert status_of(db) == "published"


FORMS = [
    "/console/journeys/new_user_coupon/pause",
    "/console/journeys/new_user_coupon/resume",
    "/console/journeys/publish",
    "/console/logout",
]


def test_every_form_refuses_a_missing_or_wrong_csrf_token(db, admin):
    http, _ = admin
    publish_shipped(db.factory, "new_user_coupon", NOW)
    for path in FORMS:
        for csrf in (None, "wrong-token"):
            data = {"shipped": "dormancy_wakeup"} | ({} if csrf is None else {"csrf": csrf})
            answer = http.post(path, data=data)
            assert answer.status_code == 403, (path, csrf)
            assert "reload and retry" in answer.text
    assert status_of(db) == "published"
    with db.factory() as session:
        assert latest_version(session, journey_id="dormancy_wakeup") is None
    assert http.get("/console/journeys").status_code == 200  # still logged in


def test_csrf_tokens_belong_to_their_session(db, http):
    publish_shipped(db.factory, "new_user_coupon", NOW)
    other = console_client(db)
    theirs = log_in(other)
    log_in(http)
    answer = http.post("/console/journeys/new_user_coupon/pause", data={"csrf": theirs})
    assert answer.status_code == 403
    assert status_of(db) == "published"


def test_logging_out_ends_the_session(admin):
    http, csrf = admin
    answer = http.post("/console/logout", data={"csrf": csrf})
    assert answer.headers["location"] == "/console/login"
    assert http.get("/console/journeys").status_code == 303


def test_the_cookie_is_secure_when_the_console_is_public_over_https(sqlite_db):
    http = console_client(sqlite_db, public_base_url="https://crm.example.com")
    answer = http.post("/console/login", data={"token": TOKEN})
    assert "secure" in answer.headers["set-cookie"].lower()
