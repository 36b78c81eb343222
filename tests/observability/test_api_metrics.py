"""GET /metrics on the API: what it ingested and whom it entered into journeys."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families
from test_end_to_end import api_server, settings_for, track

from journey_support import publish_shipped, user_in


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus text page, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(page: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples that carry ``labels`` (and maybe others, such as the
    ``service_name`` the Temporal runtime adds)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in page.items() if n == name and wanted <= have)


async def test_ingested_events_and_started_enrollments_show_on_metrics(dev_env, db, task_queue):
    publish_shipped(db.factory, "new_user_coupon", datetime.now(UTC))
    first, second = user_in("treatment", f"m1-{task_queue}"), user_in("holdout", f"m2-{task_queue}")
    signup = track(first, "user_signed_up")
    batch = {
        "batch": [
            {"type": "identify", "userId": first, "traits": {"locale": "en"}},
            {"type": "track", **signup},
            {"type": "track", **track(second, "user_signed_up")},
            {"type": "track", **track(first, "a_name_no_catalogue_knows")},
        ]
    }
    async with api_server(settings_for(db, dev_env, task_queue)) as http:
        before = samples((await http.get("/metrics")).text)
        assert (await http.post("/v1/batch", json=batch)).status_code == 200
        assert (await http.post("/v1/track", json=signup)).status_code == 200  # a duplicate
        response = await http.get("/metrics")

    assert response.headers["content-type"].startswith("text/plain")
    page = samples(response.text)
    ingested = "lifecycle_events_ingested_total"
    assert value(before, ingested, type="track", event="user_signed_up") == 0
    assert value(page, ingested, type="track", event="user_signed_up") == 2
    assert value(page, ingested, type="track", event="other") == 1  # names stay bounded
    assert value(page, ingested, type="identify", event="") == 1
    started = "lifecycle_enrollments_started_total"
    assert value(page, started, journey="new_user_coupon", group="treatment") == 1
    assert value(page, started, journey="new_user_coupon", group="holdout") == 1
    assert value(page, "process_resident_memory_bytes") > 0
    assert first not in response.text and second not in response.text  # no user ids
