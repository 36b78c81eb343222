"""The API process answers browsers only under its own names: a forged ``Host`` gets 400, never
a redirect or a page built on it. Machine endpoints (ingestion, webhooks, probes, metrics)
check keys and signatures instead and answer any Host."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.hosts import allowed_hosts
from api.server import build_app
from config import Settings


def api(db, **values: Any) -> TestClient:
    settings = Settings(database_url=db.url, **values)
    return TestClient(build_app(settings), follow_redirects=False)


def test_a_foreign_host_is_refused_instead_of_redirected_to(sqlite_db):
    http = api(sqlite_db)
    for path in ("/console", "/console/", "/console/login", "/u/some-token"):
        answer = http.get(path, headers={"Host": "evil.com"})
        assert answer.status_code == 400, path
        assert "evil.com" not in answer.headers.get("location", ""), path


def test_the_loopback_names_and_the_public_host_are_served(sqlite_db):
    http = api(sqlite_db)
    for host in ("127.0.0.1:8000", "localhost", "[::1]:8000"):
        answer = http.get("/console", headers={"Host": host})
        assert answer.status_code in (303, 307), host
        assert answer.headers["location"].split("/")[2] in (host, "")
    public = api(
        sqlite_db,
        environment="test",
        public_base_url="https://crm.example.com/lc",
        write_key="wk",
        admin_token="at",
        unsubscribe_secret=SecretStr("us"),
    )
    assert public.get("/console/login", headers={"Host": "crm.example.com"}).status_code == 200
    assert public.get("/console/login", headers={"Host": "evil.com"}).status_code == 400


def test_more_hosts_come_from_lifecycle_allowed_hosts(sqlite_db, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_ALLOWED_HOSTS", "console.internal, *.corp.example")
    http = api(sqlite_db)
    for host in ("console.internal", "a.corp.example"):
        assert http.get("/console/login", headers={"Host": host}).status_code == 200, host
    assert http.get("/console/login", headers={"Host": "corp.example.org"}).status_code == 400
    everyone = api(sqlite_db, allowed_hosts=["*"])
    assert everyone.get("/console/login", headers={"Host": "evil.com"}).status_code == 200


def test_machine_endpoints_answer_any_host(sqlite_db):
    # A probe sends the pod's IP; a platform may call the API by a cluster-internal name.
    http = api(sqlite_db)
    evil = {"Host": "10.0.3.7:8000"}
    assert http.get("/healthz", headers=evil).status_code == 200
    assert http.get("/metrics", headers=evil).status_code == 200
    assert http.post("/v1/track", json={}, headers=evil).status_code == 401  # the key decides


def test_the_api_host_counts_unless_it_is_a_wildcard_address():
    hosts = allowed_hosts(Settings(_env_file=None, api_host="::1"))  # type: ignore[call-arg]
    assert {"127.0.0.1", "localhost", "[::1]"} <= set(hosts)
    wildcard = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        api_host="0.0.0.0",  # noqa: S104
        write_key="wk",
        admin_token="at",
        unsubscribe_secret=SecretStr("us"),
    )
    assert "0.0.0.0" not in allowed_hosts(wildcard)  # noqa: S104
