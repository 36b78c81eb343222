"""Finding a user by email or phone reads an index, not the whole users table; a national
number typed without its country code still finds them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from conftest import Database

from store.db import transaction
from store.models import User
from store.users import find_users

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def user(user_id: str, email: str, phone: str) -> User:
    return User(
        id=user_id,
        email=email,
        phone=phone,
        traits={},
        tags=[],
        created_at=AT,
        last_seen_at=AT,
        updated_at=AT,
    )


def found(db: Database, query: str, phone: str | None = None) -> list[str]:
    with db.factory() as session:
        return [u.id for u in find_users(session, query=query, phone=phone)]


def test_exact_matches_first_then_a_national_number(db: Database) -> None:
    with transaction(db.factory) as session:
        session.add_all(
            [
                user("alice", "Alice@Example.com", "+8613900139000"),
                user("bob", "bob@example.com", "+8613700137000"),
                # Ends with Alice's national digits, under another country code.
                user("carol", "carol@example.com", "+4413900139000"),
            ]
        )

    assert found(db, "ALICE@example.COM") == ["alice"]
    assert found(db, "bob") == ["bob"]
    # The number as the caller normalised it matches exactly: no ends-with guess beside it.
    assert found(db, "+86 139 0013 9000", phone="+8613900139000") == ["alice"]
    # Typed without a country code and not normalisable: every phone ending with the digits.
    assert found(db, "139 0013 9000") == ["alice", "carol"]
    assert found(db, "137 0013") == []  # fewer digits than a national number
    assert found(db, "nobody@example.com") == []


def test_email_and_phone_look_ups_use_their_indexes(db: Database) -> None:
    email = "SELECT id FROM users WHERE lower(email) = 'alice@example.com'"
    phone = "SELECT id FROM users WHERE phone = '+8613900139000'"
    with db.engine.connect() as conn:
        if db.dialect == "sqlite":
            plans = [
                " ".join(str(row[-1]) for row in conn.execute(sa.text(f"EXPLAIN QUERY PLAN {q}")))
                for q in (email, phone)
            ]
        else:
            # A handful of rows would be read sequentially anyway; forbid that to see the
            # index the planner can use.
            conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
            plans = [
                " ".join(row[0] for row in conn.execute(sa.text(f"EXPLAIN {q}")))
                for q in (email, phone)
            ]
    assert "ix_users_email_lower" in plans[0]
    assert "ix_users_phone" in plans[1]
