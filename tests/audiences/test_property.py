"""Compiled SQL == the reference evaluator, for random rules over random populations,
on SQLite and on PostgreSQL, through every way of asking: ``contains``, ``members`` (one
page and keyset pages), ``count`` and ``explain``.

Operands and stored values come from small shared pools so that rules actually match, and
times sit on and around the window edges (``now - 7d`` exactly, one second either side).
Values the dialects are known to read differently are kept out of the pools and pinned by
explicit regression tests in ``test_dialects.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import Database, make_database
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from reference import (
    ConsentRow,
    CouponRow,
    EventRow,
    Population,
    PushTokenRow,
    UserRow,
    evaluate,
)
from seed import picks, seed
from sqlalchemy.orm import Session

from audiences.audience import Audience
from audiences.rules import OPS_BY_TYPE, parse_rule

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
NOWS = [NOW, NOW.astimezone(ZoneInfo("Asia/Shanghai")), NOW + timedelta(microseconds=250)]

D, H, S = timedelta(days=1), timedelta(hours=1), timedelta(seconds=1)
# Offsets from NOW, on and around the edges of the windows below.
OFFSETS = [
    *(-n * D + e for n in (7, 30, 90) for e in (-S, timedelta(0), S)),
    -180 * D, -29 * D, -6 * D, -2 * D - S, -2 * D, -D, -H, -S,
    timedelta(0),
    S, H, 24 * H, 48 * H - S, 48 * H, 48 * H + S, 3 * D, 8 * D,
]  # fmt: skip
WINDOWS = ["1h", "24h", "48h", "2d", "7d", "1w", "30d", "90d", "1d12h"]

USER_IDS = [f"u{i:02d}" for i in range(20)] + ["U20", "用户21", "u_22", "u-23"]
INSTANTS = [
    "2026-03-01T02:00:00Z",
    "2026-03-01T10:00:00+08:00",  # the same instant as the one above
    "2026-03-01 02:00:00.5+00:00",
    "2026-02-28T21:00:00-05:00",
    "2026-02-01T00:00:00+08:00",
    "2025-12-31T23:59:59Z",
    "2026-03-01T02:00Z",
]
# Values stored under each trait: mostly of one type, some of others, some JSON containers.
TRAITS: dict[str, list[Any]] = {
    "city": ["上海", "上海市", "北京", "shanghai", "Shanghai", "", "a_b", "ab", "50%", "\\", '"'],
    "age": [0, 1, 18, 18.5, -3, 200, 2000, "18", True, None],
    "vip": [True, False, "true", 1, None],
    "birthday": [*INSTANTS, "2026-03-01", 20260301, None],
    # Containers beside strings spelling them as SQLite's json_extract() returns them.
    "note": [
        "ä",
        "😀",
        "x'); DROP TABLE users; --",
        [1, 2],
        {"a": 1},
        ["上海"],
        18.5,
        "[1,2]",
        '["上海"]',
    ],
}
TIERS = ["普通", "银卡", "金卡", "钻石"]
LOCALES = ["zh-CN", "zh-TW", "en-US", "en", "zh"]
TIMEZONES = ["Asia/Shanghai", "Asia/Hong_Kong", "America/New_York", "UTC"]
TAGS = ["母婴人群", "母婴", "美妆", "vip", "%", "1"]
STORED_TAGS = [*TAGS, 1]  # a number in the list is not the tag "1"
# user_signed_up: the signed_up condition reads a user's first one (else created_at).
EVENTS = ["order_placed", "cart_updated", "page_viewed", "user_signed_up"]
PROPERTIES: dict[str, list[Any]] = {
    "category": ["beauty", "mother_baby", "母婴", "food", 3, None],
    "total": [0, 50, 199.5, 200, 1000, 2000, "200", True, False, None, [200]],
    "cart_id": ["c1", "c2", "", 1, ["c1"], '["c1"]'],
    "qty": [1, 2, 3.5],
}
CHANNELS = ["sms", "email", "push"]
TOPICS = ["marketing", "transactional"]

# Operands of every type, added to the values of the trait or property compared.
OPERANDS: dict[str, list[Any]] = {
    "string": ["上", "Sh", "a_", "%", "_", "", "zh", "Asia/", "金", "😀", "c"],
    "number": [0, 18, 199.5, 200, 2000],
    "bool": [True, False],
    "timestamp": INSTANTS[:2] + INSTANTS[4:],
}
TYPES = tuple(OPS_BY_TYPE)


def type_of(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else None


def at() -> st.SearchStrategy[datetime]:
    return st.sampled_from(OFFSETS).map(lambda offset: NOW + offset)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


# -- populations --------------------------------------------------------------------------


@st.composite
def populations(draw: st.DrawFn) -> Population:
    ids = draw(st.lists(st.sampled_from(USER_IDS), min_size=5, max_size=15, unique=True))
    pop = Population()
    for uid in ids:
        pop.users.append(
            UserRow(
                id=uid,
                created_at=draw(at()),
                last_seen_at=draw(maybe(at())),
                traits={
                    name: draw(st.sampled_from(values))
                    for name, values in TRAITS.items()
                    if draw(st.booleans())  # some traits are missing
                },
                tags=draw(st.lists(st.sampled_from(STORED_TAGS), max_size=2, unique=True)),
                member_tier=draw(maybe(st.sampled_from(TIERS))),
                locale=draw(maybe(st.sampled_from(LOCALES))),
                timezone=draw(maybe(st.sampled_from(TIMEZONES))),
                phone=draw(st.sampled_from([None, "", "+8613800138000"])),
                email=draw(st.sampled_from([None, "", "u@example.com"])),
            )
        )
        for _ in range(draw(st.integers(0, 6))):
            pop.events.append(
                EventRow(uid, draw(st.sampled_from(EVENTS)), draw(at()), draw(props()))
            )
        for _ in range(draw(st.integers(0, 2))):
            redeemed = draw(maybe(st.sampled_from([NOW - D, NOW - H])))
            pop.coupons.append(CouponRow(uid, draw(at()), redeemed))
        for channel, topic in draw(
            st.lists(st.tuples(st.sampled_from(CHANNELS), st.sampled_from(TOPICS)), unique=True)
        ):
            status = draw(st.sampled_from(["subscribed", "unsubscribed"]))
            pop.consents.append(ConsentRow(uid, channel, topic, status))
        for i in range(draw(st.integers(0, 2))):
            pop.push_tokens.append(PushTokenRow(uid, f"token-{uid}-{i}"))
    # Events nobody in the table owns: anonymous ones and those of a deleted profile.
    for owner in draw(st.lists(st.sampled_from([None, "ghost"]), max_size=2)):
        pop.events.append(EventRow(owner, draw(st.sampled_from(EVENTS)), draw(at()), draw(props())))
    return pop


@st.composite
def props(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(PROPERTIES)), unique=True, max_size=3))
    return {name: draw(st.sampled_from(PROPERTIES[name])) for name in names}


# -- rules --------------------------------------------------------------------------------


@st.composite
def comparison(
    draw: st.DrawFn, values: list[Any], home: str, *, other_types: bool = True
) -> dict[str, Any]:
    """A comparison spec, e.g. ``{type: number, gte: 18}``: usually of the ``home`` type,
    with operands taken from the ``values`` stored there (so that it matches someone)."""
    vtype = draw(st.sampled_from([home, home, home, *TYPES] if other_types else [home]))
    op = draw(st.sampled_from(OPS_BY_TYPE[vtype]))
    stored = [v for v in values if type_of(v) == vtype]
    if vtype == "timestamp":
        stored = [v for v in values if v in OPERANDS["timestamp"]]
    pool = st.sampled_from(stored + OPERANDS[vtype])
    if op == "exists":
        spec: dict[str, Any] = {"exists": draw(st.booleans())}
    elif op == "in":
        spec = {"in": draw(st.lists(pool, min_size=1, max_size=3))}
    else:
        spec = {op: draw(pool)}
    # The type follows from the operand unless declared; text is only a timestamp if declared.
    if vtype == "timestamp" or (op == "exists" and vtype != "string") or draw(st.booleans()):
        spec["type"] = vtype
    return spec


@st.composite
def trait_rule(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(TRAITS)))
    home = {"age": "number", "vip": "bool", "birthday": "timestamp"}.get(name, "string")
    return {"trait": {"name": name, **draw(comparison(TRAITS[name], home))}}


def field_rule(key: str, pool: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.sampled_from(pool).map(lambda v: {key: v}),
        comparison(pool, "string", other_types=False).map(
            lambda spec: {key: {k: v for k, v in spec.items() if k != "type"}}
        ),
    )


def windows(key: str, names: tuple[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda name, window: {key: {name: window}}, st.sampled_from(names), st.sampled_from(WINDOWS)
    )


@st.composite
def event_rule(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"name": draw(st.sampled_from(EVENTS))}
    if draw(st.booleans()):
        body["within"] = draw(st.sampled_from(WINDOWS))
    where = draw(st.lists(st.sampled_from(sorted(PROPERTIES)), unique=True, max_size=2))
    if where:
        homes = {"total": "number", "qty": "number"}
        body["where"] = {
            name: draw(comparison(PROPERTIES[name], homes.get(name, "string"))) for name in where
        }
    return {"event": body | draw(measures())}


@st.composite
def measures(draw: st.DrawFn) -> dict[str, Any]:
    """How an event condition measures its rows: a count (or the default, at least once) or
    a sum, some of which hold for users without any row (``at_most``, ``exactly: 0``, ``lt``)."""
    shape = draw(st.sampled_from(["default", "at_least", "at_most", "exactly", "sum"]))
    if shape == "sum":
        op = draw(st.sampled_from(["gt", "gte", "lt", "lte"]))
        limit = draw(st.sampled_from([0, 50, 199.5, 200, 2000, 2050]))
        return {"sum": {"property": draw(st.sampled_from(["total", "qty", "category"])), op: limit}}
    if shape == "default":
        return {}
    return {shape: draw(st.integers(0, 3))}


@st.composite
def siblings(draw: st.DrawFn) -> dict[str, Any]:
    """``any`` / ``all`` of several event conditions over the same rows (same event, window
    and filters: asked together as one grouped query), mixed with other conditions."""
    rows = {
        k: v for k, v in draw(event_rule())["event"].items() if k in ("name", "within", "where")
    }
    conds = [{"event": rows | draw(measures())} for _ in range(draw(st.integers(2, 4)))]
    others = draw(st.lists(LEAVES, max_size=2))
    return {draw(st.sampled_from(["any", "all"])): draw(st.permutations(conds + others))}


LEAF_KINDS: list[st.SearchStrategy[dict[str, Any]]] = [
    trait_rule(),
    field_rule("tier", TIERS),
    field_rule("locale", LOCALES),
    field_rule("timezone", TIMEZONES),
    st.sampled_from(TAGS).map(lambda tag: {"tag": tag}),
    windows("signed_up", ("within", "before")),
    windows("last_seen", ("within", "not_within")),
    event_rule(),
    st.sampled_from(["1h", "24h", "48h", "7d"]).map(lambda w: {"coupon": {"expiring_within": w}}),
    st.sampled_from([True, None, {}, *({"within": w} for w in WINDOWS)]).map(
        lambda body: {"open_cart": body}
    ),
    st.builds(
        lambda channel, topic: {"subscribed": {"channel": channel} | topic},
        st.sampled_from(CHANNELS),
        st.sampled_from([{}, *({"topic": t} for t in TOPICS)]),
    ),
    st.sampled_from(CHANNELS).map(lambda channel: {"reachable": channel}),
]
# Pick the condition first, so that conditions with few distinct shapes (``reachable``) are
# drawn as often as those with many (``event``).
LEAVES = st.sampled_from(LEAF_KINDS).flatmap(lambda kind: kind)


def rules(depth: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    """Rules nested ``all`` / ``any`` / ``not`` up to ``depth`` levels deep."""
    if depth == 0:
        return LEAVES
    inner = rules(depth - 1)
    return st.one_of(
        LEAVES,
        st.lists(inner, max_size=3).map(lambda rs: {"all": rs}),
        st.lists(inner, max_size=3).map(lambda rs: {"any": rs}),
        inner.map(lambda r: {"not": r}),
    )


# -- the property -------------------------------------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Population]:
    """Random nested rules, one rule of every condition, then a population.

    Rules come first: drawn after a large population, Hypothesis varies them far less."""
    trees = draw(st.lists(rules(), min_size=1, max_size=3))
    battery = [draw(kind) for kind in LEAF_KINDS]
    return trees, battery, draw(populations())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres_ok: bool
) -> Iterator[Database]:
    """One database per dialect for the whole module; each example rolls its rows back."""
    yield from make_database(request.param, tmp_path_factory.mktemp("audiences"), postgres_ok)


def reference(population: Population, rule: dict[str, Any], user: UserRow, now: datetime) -> bool:
    return evaluate(
        rule,
        user,
        population.events,
        population.coupons,
        population.consents,
        population.push_tokens,
        now,
    )


def paged(audience: Audience, session: Session, now: datetime, limit: int) -> list[str]:
    """Every member, a keyset page of ``limit`` at a time."""
    pages: list[str] = []
    after = None
    while True:
        page = audience.members(session, now=now, after=after, limit=limit)
        assert len(page) <= limit
        pages += page
        if len(page) < limit:
            return pages
        after = page[-1]


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios(), now=st.sampled_from(NOWS), limit=st.integers(1, 4))
def test_compiled_sql_agrees_with_the_reference(
    database: Database,
    scenario: tuple[list[dict[str, Any]], list[dict[str, Any]], Population],
    now: datetime,
    limit: int,
) -> None:
    trees, battery, population = scenario
    everyone = [u.id for u in population.users]
    with database.factory() as session:
        seed(session, population, at=NOW)

        # Every condition once: per user through explain (the correlated, one-user SQL),
        # for the population through members and count (the semi-join SQL).
        note(f"battery: {battery!r}")
        explained = Audience("battery", "battery", parse_rule({"any": battery})).explain(
            session, user_ids=everyone, now=now
        )
        assert sorted(explained) == sorted(everyone)
        for user in population.users:
            want = [reference(population, leaf, user, now) for leaf in battery]
            assert [held for _, held in explained[user.id]] == want, user
        for leaf in battery:
            audience = Audience("leaf", "leaf", parse_rule(leaf))
            expected = population.members(leaf, now)
            assert set(audience.members(session, now=now)) == expected, leaf
            assert audience.count(session, now=now) == len(expected), leaf

        # Nested rules, through every way of asking.
        for tree in trees:
            agrees_every_way(session, population, tree, now, limit)
        session.rollback()


def agrees_every_way(
    session: Session, population: Population, rule: dict[str, Any], now: datetime, limit: int
) -> None:
    """``contains`` for every user, ``members`` (whole and paged) and ``count`` all give the
    reference's members of ``rule``."""
    note(f"rule: {rule!r}")
    audience = Audience("tree", "tree", parse_rule(rule))
    expected = population.members(rule, now)
    picks(session, audience, population, expected, now=now)
    page = audience.members(session, now=now)
    assert len(page) == len(set(page))
    assert paged(audience, session, now, limit) == page


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rule=st.tuples(siblings(), LEAVES).flatmap(
        lambda rs: st.sampled_from([rs[0], {"not": rs[0]}, {"all": [*rs]}, {"any": [*rs]}])
    ),
    population=populations(),
    now=st.sampled_from(NOWS),
)
def test_event_conditions_over_the_same_rows_agree_with_the_reference(
    database: Database, rule: dict[str, Any], population: Population, now: datetime
) -> None:
    """Counts and sums of one event's rows, asked together under ``any`` / ``all`` (negated,
    or nested in another), including those that hold for users without any row."""
    with database.factory() as session:
        seed(session, population, at=NOW)
        agrees_every_way(session, population, rule, now, limit=2)
        session.rollback()
