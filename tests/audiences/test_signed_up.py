"""``signed_up`` reads when a user signed up, their first ``user_signed_up`` event, not when
the profile was first seen; a profile that never sent one falls back to when it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import Database
from reference import EventRow, Population
from seed import picks, seed
from test_rules import NOW, person

from audiences.audience import _statements, audience_from_data
from audiences.compiler import instants
from audiences.rules import parse_rule

D, H = timedelta(days=1), timedelta(hours=1)


def signup(user_id: str, ago: timedelta) -> EventRow:
    return EventRow(user_id, "user_signed_up", NOW - ago, {})


def population() -> Population:
    users = [
        # First seen viewing a product two days ago, signed up an hour ago.
        person("visitor_signed_up_today", created_at=NOW - 2 * D),
        # First seen an hour ago, but the sign-up it sends is ten days old (arrived late).
        person("late_signup", created_at=NOW - H),
        # Profiles that never sent a sign-up (imported, legacy): first seen stands in.
        person("legacy_recent", created_at=NOW - 12 * H),
        person("legacy_old", created_at=NOW - 40 * D),
        # Signed up 40 days ago and again an hour ago: the first counts.
        person("signed_up_twice", created_at=NOW - 50 * D),
        # An old profile that signed up two days ago.
        person("old_profile_new_signup", created_at=NOW - 40 * D),
        # A sign-up stamped after now has not happened yet.
        person("signup_after_now", created_at=NOW - 2 * D),
    ]
    events = [
        EventRow("visitor_signed_up_today", "product_viewed", NOW - 2 * D, {"product_id": "p1"}),
        signup("visitor_signed_up_today", H),
        signup("late_signup", 10 * D),
        signup("signed_up_twice", 40 * D),
        signup("signed_up_twice", H),
        signup("old_profile_new_signup", 2 * D),
        signup("signup_after_now", -H),
        # Sign-ups nobody in the users table owns.
        signup("erased:1", H),
        EventRow(None, "user_signed_up", NOW - H, {}),
    ]
    return Population(users, events)


CASES = [
    ({"within": "1d"}, {"visitor_signed_up_today", "legacy_recent"}),
    (
        {"within": "7d"},
        {"visitor_signed_up_today", "legacy_recent", "old_profile_new_signup", "signup_after_now"},
    ),
    ({"before": "7d"}, {"late_signup", "legacy_old", "signed_up_twice"}),
    ({"before": "30d"}, {"legacy_old", "signed_up_twice"}),
]


@pytest.mark.parametrize(("window", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_signed_up_reads_the_first_sign_up_else_first_seen(
    db: Database, window: dict[str, str], expected: set[str]
) -> None:
    rule = {"signed_up": window}
    pop = population()
    assert pop.members(rule, NOW) == expected  # the reference agrees
    for negated in (False, True):
        asked = {"not": rule} if negated else rule
        want = {u.id for u in pop.users} - expected if negated else expected
        with db.factory() as session:
            seed(session, pop, at=NOW)
            picks(session, audience_from_data(asked), pop, want, now=NOW)
            session.rollback()


def test_explain_says_which_instant_it_read(db: Database) -> None:
    rule = {"all": [{"signed_up": {"within": "1d"}}, {"tag": "vip"}]}
    users = ["visitor_signed_up_today", "late_signup", "legacy_recent", "signup_after_now"]
    with db.factory() as session:
        seed(session, population(), at=NOW)
        why = audience_from_data(rule).explain(session, user_ids=users, now=NOW)
        session.rollback()
    assert {user: parts[0] for user, parts in why.items()} == {
        "visitor_signed_up_today": (
            "signed up within 1d: signed up 1h ago (first user_signed_up)",
            True,
        ),
        "late_signup": ("signed up within 1d: signed up 10d ago (first user_signed_up)", False),
        "legacy_recent": ("signed up within 1d: no user_signed_up, first seen 12h ago", True),
        "signup_after_now": ("signed up within 1d: no user_signed_up, first seen 2d ago", False),
    }
    assert why["late_signup"][1] == ("tagged vip", False)


@contextmanager
def plans(engine: sa.Engine) -> Iterator[None]:
    """Statements run inside the block are explained instead (parameters bound as usual)."""
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "

    def explain(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> Any:
        return prefix + statement, parameters

    sa.event.listen(engine, "before_cursor_execute", explain, retval=True)
    try:
        yield
    finally:
        sa.event.remove(engine, "before_cursor_execute", explain)


@pytest.mark.parametrize("window", [{"within": "7d"}, {"before": "30d"}])
def test_signed_up_reads_sign_ups_through_the_events_indexes(
    db: Database, window: dict[str, str]
) -> None:
    """One user's sign-ups by (user_id, event, timestamp); the population's from the
    sign-ups in the span, by (event, timestamp, user_id): never a pass over all events."""
    asked = _statements(parse_rule({"signed_up": window}), db.dialect)
    at = instants(asked.offsets, NOW)
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            # Empty tables are read sequentially anyway; forbid it to see the indexes usable.
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        with plans(db.engine):
            one, everyone = (
                " ".join(str(row[-1]) for row in conn.execute(stmt, params))
                for stmt, params in ((asked.contains, at | {"user_id": "u"}), (asked.count, at))
            )
    if db.dialect == "sqlite":
        assert "ix_events_user_event_ts" in one
        assert "ix_events_event_ts_user" in everyone
    # PostgreSQL picks among the indexes by the tables' statistics, which empty tables lack.
    for plan in (one, everyone):
        assert "SCAN events" not in plan and "Seq Scan on events" not in plan, plan
