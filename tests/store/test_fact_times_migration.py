"""Migration 0010: profiles and push tokens stored before it get the times of their facts."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from conftest import Database

from store.migrate import alembic_config, upgrade
from store.models import PushToken, User

UPDATED = datetime(2025, 4, 2, 3, 4, 5, 678901, tzinfo=UTC)
CREATED = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def downgrade(db: Database, revision: str) -> None:
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_existing_traits_and_tokens_are_dated_by_their_rows(db: Database) -> None:
    downgrade(db, "0009")
    users = sa.table(
        "users",
        sa.column("id"),
        sa.column("traits", sa.JSON()),
        sa.column("tags", sa.JSON()),
        sa.column("created_at", User.created_at.type),
        sa.column("updated_at", User.updated_at.type),
    )
    tokens = sa.table(
        "push_tokens",
        sa.column("user_id"),
        sa.column("token"),
        sa.column("created_at", PushToken.created_at.type),
    )
    with db.engine.begin() as conn:
        conn.execute(
            users.insert(),
            [
                {
                    "id": "u1",
                    "traits": {"email": "a@example.com", "plan": "pro"},
                    "tags": [],
                    "created_at": CREATED,
                    "updated_at": UPDATED,
                },
                {
                    "id": "u2",
                    "traits": {},
                    "tags": [],
                    "created_at": CREATED,
                    "updated_at": UPDATED,
                },
            ],
        )
        conn.execute(tokens.insert(), [{"user_id": "u1", "token": "tok-1", "created_at": CREATED}])

    upgrade(db.engine)

    with db.factory() as session:
        u1, u2 = session.get_one(User, "u1"), session.get_one(User, "u2")
        token = session.scalars(sa.select(PushToken)).one()
    assert {k: datetime.fromisoformat(v) for k, v in u1.trait_times.items()} == {
        "email": UPDATED,
        "plan": UPDATED,
    }
    assert u2.trait_times == {}
    assert token.registered_at == CREATED

    # And back: the columns go, the rows stay.
    downgrade(db, "0009")
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(users)).scalar() == 2
        columns = {c["name"] for c in sa.inspect(conn).get_columns("users")}
    assert "trait_times" not in columns
