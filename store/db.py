"""Engine and session factory, built from settings by entry points (never at import)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SessionFactory = sessionmaker[Session]


def json_dumps(value: object) -> str:
    # Unicode kept as is (not \uXXXX): SQLite's JSON paths match keys such as "名字" only
    # when they are stored literally. orjson does that several times faster; what it refuses
    # (integers beyond 64 bits, an unpaired surrogate) goes through json as before.
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, ensure_ascii=False)


def make_engine(url: str, *, pre_ping: bool = True, **kwargs: object) -> Engine:
    """Create an engine for ``url``, tuned for the dialect.

    ``pre_ping``: test each pooled PostgreSQL connection before use (one round trip per
    transaction), so a database restart costs no request. The worker turns it off: its
    transactions are short and many, and an activity that meets a dropped connection is
    retried by Temporal (SQLAlchemy then replaces every pooled connection).

    SQLite gets WAL journaling, a busy timeout and foreign keys, so the API and the worker
    can share one file; its parent folder is created if missing.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connect_args = dict(kwargs.pop("connect_args", {}) or {})  # type: ignore[call-overload]
        connect_args.setdefault("timeout", 30)
        connect_args.setdefault("check_same_thread", False)
        engine = create_engine(
            url,
            connect_args=connect_args,
            json_serializer=json_dumps,
            hide_parameters=True,  # errors and logs must not carry phone numbers or emails
            **kwargs,  # type: ignore[arg-type]
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; accept the plain URL people paste.
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(
        url,
        pool_pre_ping=pre_ping,
        json_serializer=json_dumps,
        hide_parameters=True,  # errors and logs must not carry phone numbers or emails
        **kwargs,  # type: ignore[arg-type]
    )


def make_session_factory(engine: Engine) -> SessionFactory:
    """Session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: SessionFactory) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    with factory() as session, session.begin():
        yield session
