"""Saved audiences: each save is the name's next version, the name means the latest, and a
shipped audience's name cannot be taken."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import Database

from audiences.rules import AudienceError, Tag
from audiences.saved import named_audience, named_audiences, save_audience
from store.db import transaction
from store.saved_audiences import saved_versions

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)


def save(db: Database, name: str, source: str, note: str = "") -> int:
    with transaction(db.factory) as session:
        return save_audience(
            session, name=name, source=source, saved_by="ana", note=note, now=NOW
        ).version


def test_saving_twice_makes_versions_one_and_two_and_the_latest_is_the_audience(
    db: Database,
) -> None:
    assert save(db, "vip", "all:\n- tag: vip\n", "first") == 1
    assert save(db, "vip", "all:\n- tag: svip\n", "narrower") == 2
    assert save(db, "other", "tag: x\n") == 1
    with db.factory() as session:
        assert [(v.version, v.note, v.saved_by) for v in saved_versions(session, name="vip")] == [
            (2, "narrower", "ana"),
            (1, "first", "ana"),
        ]
        found = named_audience(session, "vip")
        assert found is not None and found.rule.rules == (Tag("svip"),)  # type: ignore[union-attr]
        assert found.description == "narrower"
        every = named_audiences(session)
        assert {"vip", "other", "new_users_7d"} <= set(every)
        assert named_audience(session, "nobody") is None
        # A shipped audience is found by its name as before.
        shipped = named_audience(session, "new_users_7d")
        assert shipped is not None and shipped.name == "New users (7 days)"


@pytest.mark.parametrize(
    ("name", "source", "path"),
    [
        ("dormant_30d", "tag: x\n", "name"),
        ("Bad Name", "tag: x\n", "name"),
        ("new", "tag: x\n", "name"),
        ("fine", "tag: [x]\n", "rule.tag"),
        ("fine", "tag: x: y\n", "rule"),
    ],
)
def test_a_shipped_name_a_bad_name_or_a_bad_rule_is_refused(
    db: Database, name: str, source: str, path: str
) -> None:
    with pytest.raises(AudienceError) as refused:
        save(db, name, source)
    assert refused.value.path == path
    with db.factory() as session:
        assert saved_versions(session, name=name) == []
