"""Stored values read the same way on SQLite and PostgreSQL as the rule language says.

Each case pins one value against the reference evaluator on both dialects. Where a dialect
is known to disagree, that (case, dialect) pair is an explicit strict ``xfail`` naming the
disagreement, so a fix shows up as an unexpected pass. The property test keeps these values
out of its pools.
"""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import Database, make_database
from reference import EventRow, Population, UserRow
from seed import picks, seed

from audiences import compiler
from audiences.audience import _statements, audience_from_data, parse_audience_text
from audiences.compiler import Compiler
from audiences.rules import AudienceError, parse_rule

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
DIALECTS = ("sqlite", "postgresql")


@pytest.fixture(scope="module")
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres_ok: bool
) -> Iterator[Database]:
    """The dialect named by the test's parameter, shared by the module's tests."""
    yield from make_database(request.param, tmp_path_factory.mktemp("dialects"), postgres_ok)


Bug = tuple[str, type[BaseException], str]  # dialect, what it raises, the disagreement


@dataclass(frozen=True)
class Case:
    """Users with the given ``traits`` (one dict per user, ids ``u0``, ``u1``, ...), a rule,
    and which dialects are known to get it wrong (and how)."""

    id: str
    traits: list[dict[str, Any]]
    rule: dict[str, Any]
    bugs: tuple[Bug, ...] = ()


def params(cases: list[Case]) -> list[Any]:
    """Every case on every dialect, known disagreements marked strict xfail."""
    out = []
    for case in cases:
        for kind in DIALECTS:
            marks = [
                pytest.mark.xfail(strict=True, raises=raises, reason=reason)
                for dialect, raises, reason in case.bugs
                if dialect == kind
            ]
            out.append(pytest.param(kind, case, id=f"{case.id}-{kind}", marks=marks))
    return out


def assert_agrees_with_reference(database: Database, case: Case) -> None:
    population = Population(
        users=[
            UserRow(id=f"u{i}", created_at=NOW - timedelta(days=1), traits=traits)
            for i, traits in enumerate(case.traits)
        ]
    )
    expected = population.members(case.rule, NOW)
    audience = audience_from_data(case.rule)
    with database.factory() as session:
        seed(session, population, at=NOW)
        picks(session, audience, population, expected, now=NOW)
        session.rollback()


def instant(case_id: str, text: str, op: str, operand: str, *bugs: Bug) -> Case:
    """One user whose ``t`` trait holds ``text``, and a valid instant on a second user, so
    that an error on one profile is seen to cost the whole audience."""
    rule = {"trait": {"name": "t", "type": "timestamp", op: operand}}
    return Case(case_id, [{"t": text}, {"t": "2026-02-01T00:00:00+08:00"}], rule, bugs)


LATER = "2027-01-01T00:00:00Z"

TIMESTAMPS = [
    # Agreed: any offset, a space for the T, no seconds, fractions; no offset or no time is text.
    instant("offset", "2026-03-01T10:00:00+08:00", "eq", "2026-03-01T02:00:00Z"),
    instant("negative-offset", "2026-02-28T21:00:00-05:00", "eq", "2026-03-01T02:00:00Z"),
    instant("space", "2026-03-01 02:00:00Z", "eq", "2026-03-01T10:00:00+08:00"),
    instant("no-seconds", "2026-03-01T02:00Z", "gte", "2026-03-01T02:00:00Z"),
    instant("fraction", "2026-03-01T02:00:00.5Z", "gt", "2026-03-01T02:00:00Z"),
    instant("no-offset", "2026-03-01T02:00:00", "lt", LATER),
    instant("date-only", "2026-03-01", "lt", LATER),
    instant("text-ending-in-z", "soon Z", "lt", LATER),
    # Not instants on either dialect (and never a query error on PostgreSQL).
    instant("february-30", "2026-02-30T00:00:00Z", "lt", LATER),
    instant("month-13", "2026-13-01T00:00:00Z", "lt", LATER),
    instant("offset-24h", "2026-02-01T00:00:00+24:00", "lt", LATER),
    instant("leap-second", "2026-03-01T23:59:60Z", "gt", "2026-03-01T12:00:00Z"),
    instant("offset-without-colon", "2026-02-01T00:00:00+0800", "lt", LATER),
    instant("time-only", "12:30+08:00", "lt", LATER),
    # Known disagreement.
    instant(
        "sub-millisecond",
        "2026-03-01T00:00:00.0004Z",
        "gt",
        "2026-03-01T00:00:00Z",
        (
            "sqlite",
            AssertionError,
            "julianday() keeps milliseconds only: 400 µs after midnight equals midnight on SQLite",
        ),
    ),
]


@pytest.mark.parametrize(
    ("database", "case"), params(TIMESTAMPS), indirect=["database"], scope="module"
)
def test_text_is_read_as_an_instant_alike(database: Database, case: Case) -> None:
    assert_agrees_with_reference(database, case)


OTHER_VALUES = [
    Case(
        "cjk-value",
        [{"city": "上海"}, {"city": "上海市"}],
        {"trait": {"name": "city", "eq": "上海"}},
    ),
    Case(
        "emoji-prefix", [{"n": "😀ab"}, {"n": "ab"}], {"trait": {"name": "n", "starts_with": "😀a"}}
    ),
    Case("astral-order", [{"n": "😀"}, {"n": "\uffff"}], {"trait": {"name": "n", "gt": "\uffff"}}),
    Case(
        "cjk-trait-name",
        [{"名字": "小明"}, {"名字": "小红"}],
        {"trait": {"name": "名字", "eq": "小明"}},
    ),
    Case(
        "big-integer",
        [{"member_no": 1234567890123456789}, {"member_no": 1}],
        {"trait": {"name": "member_no", "eq": 1234567890123456789}},
        bugs=(
            (
                "sqlite",
                AssertionError,
                "the rule's number is bound as a float (1.2345678901234568e18) and SQLite "
                "compares it exactly with the stored integer; PostgreSQL casts both to float",
            ),
        ),
    ),
]


@pytest.mark.parametrize(
    ("database", "case"), params(OTHER_VALUES), indirect=["database"], scope="module"
)
def test_other_values_read_alike(database: Database, case: Case) -> None:
    assert_agrees_with_reference(database, case)


# SQLite's json_extract() returns an array or object as its JSON text and true as 1: the
# JSON type, asked only where the value matched, still decides.
JSON_TYPES = [
    Case(
        "container-is-not-its-text",
        [{"n": [1, 2]}, {"n": "[1,2]"}, {"n": {"a": 1}}, {"n": '{"a":1}'}],
        {"trait": {"name": "n", "in": ["[1,2]", '{"a":1}']}},
    ),
    Case(
        "container-starts-with",
        [{"n": [1, 2]}, {"n": "[1,2]"}],
        {"trait": {"name": "n", "starts_with": "[1"}},
    ),
    Case(
        "not-container-text",
        [{"n": [1, 2]}, {"n": "[1,2]"}, {}],
        {"not": {"trait": {"name": "n", "eq": "[1,2]"}}},
    ),
    Case(
        "true-is-not-1",
        [{"n": True}, {"n": 1}, {"n": "1"}, {"n": 1.0}],
        {"trait": {"name": "n", "eq": 1}},
    ),
    Case(
        "true-is-not-other-than-2",
        [{"n": True}, {"n": 2}, {"n": 3}, {"n": "3"}, {}],
        {"trait": {"name": "n", "ne": 2}},
    ),
    Case(
        "1-is-not-true",
        [{"b": True}, {"b": 1}, {"b": "true"}],
        {"trait": {"name": "b", "eq": True}},
    ),
    Case("0-is-not-false", [{"b": False}, {"b": 0}], {"trait": {"name": "b", "ne": True}}),
    Case("number-contains", [{"n": 12}, {"n": "12"}], {"trait": {"name": "n", "contains": "1"}}),
    Case(
        "text-above-numbers",
        [{"n": "abc"}, {"n": 5}, {"n": 50}],
        {"trait": {"name": "n", "gt": 10}},
    ),
    Case(
        "not-a-string",
        [{"n": [1]}, {"n": "x"}, {}, {"n": None}, {"n": 1}],
        {"trait": {"name": "n", "exists": False}},
    ),
    Case(
        "a-number",
        [{"n": True}, {"n": 1}, {"n": "1"}, {}, {"n": [1]}],
        {"trait": {"name": "n", "type": "number", "exists": True}},
    ),
    Case(
        "not-a-number",
        [{"n": True}, {"n": 1}, {"n": "1"}, {}, {"n": 1.5}],
        {"not": {"trait": {"name": "n", "type": "number", "exists": True}}},
    ),
]


@pytest.mark.parametrize(
    ("database", "case"), params(JSON_TYPES), indirect=["database"], scope="module"
)
def test_values_are_read_by_their_json_type(database: Database, case: Case) -> None:
    assert_agrees_with_reference(database, case)


def event_params(bugs: dict[str, tuple[type[BaseException], str]]) -> list[Any]:
    return [
        pytest.param(
            kind,
            marks=[pytest.mark.xfail(strict=True, raises=bugs[kind][0], reason=bugs[kind][1])]
            if kind in bugs
            else [],
            id=kind,
        )
        for kind in DIALECTS
    ]


def assert_event_rule_agrees(database: Database, rule: dict[str, Any], events: list[Any]) -> None:
    population = Population(
        users=[UserRow(id=f"u{i}", created_at=NOW - timedelta(days=1)) for i in range(2)],
        events=[EventRow(user, "order_placed", NOW - timedelta(hours=1), p) for user, p in events],
    )
    expected = population.members(rule, NOW)
    audience = audience_from_data(rule)
    with database.factory() as session:
        seed(session, population, at=NOW)
        assert set(audience.members(session, now=NOW)) == expected
        assert audience.contains(session, user_id="u0", now=NOW) is ("u0" in expected)
        session.rollback()


@pytest.mark.parametrize("database", event_params({}), indirect=True)
def test_a_cjk_property_name_filters_events(database: Database) -> None:
    rule = {"event": {"name": "order_placed", "where": {"类目": {"eq": "母婴"}}}}
    assert_event_rule_agrees(database, rule, [("u0", {"类目": "母婴"}), ("u1", {"类目": "美妆"})])


@pytest.mark.parametrize("database", event_params({}), indirect=True)
def test_a_sum_beyond_int64_is_a_number_not_an_error(database: Database) -> None:
    rule = {"event": {"name": "order_placed", "sum": {"property": "total", "gte": 1}}}
    big = 2**62
    assert_event_rule_agrees(database, rule, [("u0", {"total": big}), ("u0", {"total": big})])


@pytest.fixture(params=[True, False], ids=["arrow", "no-arrow"])
def sqlite_arrow(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    """Statements compiled with SQLite's ``->`` (3.38) and with the form for older SQLite."""
    if request.param and sqlite3.sqlite_version_info < (3, 38, 0):
        pytest.skip(f"SQLite {sqlite3.sqlite_version} has no ->")
    monkeypatch.setattr(compiler, "_SQLITE_ARROW", request.param)
    _statements.cache_clear()  # statements are kept per rule and dialect
    yield request.param
    _statements.cache_clear()


# Every JSON type under "total" for u0; u1's numbers add up to 2,000.
TOTALS = [
    *(("u0", {"total": t}) for t in (1500, "600", True, False, None, [700], {"a": 700}, 499.5)),
    ("u0", {"total": -0.0}),
    ("u0", {"amount": 700}),
    ("u1", {"total": 1999}),
    ("u1", {"total": 1.0}),
    ("u1", {"total": "1"}),
]


@pytest.mark.parametrize("database", event_params({}), indirect=True)
@pytest.mark.parametrize(("op", "value"), [("gte", 2000), ("gte", 1999.5), ("lt", 1999.5)])
def test_a_sum_adds_json_numbers_only(
    database: Database, sqlite_arrow: bool, op: str, value: float
) -> None:
    if database.dialect == "postgresql" and not sqlite_arrow:
        pytest.skip("SQLite only")
    rule = {"event": {"name": "order_placed", "sum": {"property": "total", op: value}}}
    assert_event_rule_agrees(database, rule, TOTALS)


@pytest.mark.parametrize("database", event_params({}), indirect=True)
@pytest.mark.parametrize(
    "where",
    [
        {"total": {"gte": 200}},
        {"total": {"type": "number", "exists": False}},
        {"total": {"eq": True}},
        {"category": {"eq": "[1,2]"}},
        {"category": {"in": ["[1,2]", "x"]}},
    ],
    ids=["number", "not-a-number", "bool", "container-text", "container-text-in"],
)
def test_event_filters_read_json_types(database: Database, where: dict[str, Any]) -> None:
    rule = {"event": {"name": "order_placed", "where": where}}
    events = [
        ("u0", {"total": "300", "category": [1, 2]}),
        ("u0", {"total": 1, "category": {"x": 1}}),
        ("u0", {"total": [300]}),
        ("u1", {"total": 300, "category": "[1,2]"}),
        ("u1", {"total": True}),
    ]
    assert_event_rule_agrees(database, rule, events)


@pytest.mark.parametrize("database", event_params({}), indirect=True)
def test_an_open_cart_is_closed_by_an_order_of_the_same_string(database: Database) -> None:
    """cart_id is read as a string on both sides: an array or a number spelled like a
    string is another cart."""
    carts = {  # user: (the cart's cart_id, the order's cart_id)
        "u0": (["c1"], '["c1"]'),  # the cart has no string id: never open
        "u1": ('["c1"]', ["c1"]),  # the order is of no cart: open
        "u2": ("c1", "c1"),  # ordered
        "u3": ("1", 1),  # open
        "u4": ("c1", "c2"),  # open
    }
    hour = timedelta(hours=1)
    population = Population(
        users=[UserRow(id=u, created_at=NOW - timedelta(days=1)) for u in carts],
        events=[
            row
            for user, (cart, order) in carts.items()
            for row in (
                EventRow(user, "cart_updated", NOW - 2 * hour, {"cart_id": cart}),
                EventRow(user, "order_placed", NOW - hour, {"cart_id": order}),
            )
        ],
    )
    rule = {"open_cart": {"within": "7d"}}
    expected = population.members(rule, NOW)
    assert expected == {"u1", "u3", "u4"}
    with database.factory() as session:
        seed(session, population, at=NOW)
        picks(session, audience_from_data(rule), population, expected, now=NOW)
        session.rollback()


@pytest.mark.parametrize(
    "rule",
    [
        {"trait": {"name": "age", "lt": float("nan")}},
        {"trait": {"name": "age", "in": [1, float("nan")]}},
        {"event": {"name": "order_placed", "sum": {"property": "total", "lt": float("nan")}}},
    ],
    ids=["compare", "in", "sum"],
)
def test_nan_is_not_a_number_to_compare_with(rule: dict[str, Any]) -> None:
    with pytest.raises(AudienceError):
        parse_rule(rule)


def test_nan_from_yaml_is_refused() -> None:
    with pytest.raises(AudienceError):
        parse_audience_text("trait: {name: age, lt: .nan}")


def test_infinity_compares_alike_on_both_dialects() -> None:
    """``.inf`` is a usable bound (unlike ``.nan``), so it stays accepted."""
    rule = parse_rule({"trait": {"name": "age", "lt": float("inf")}})
    assert rule.compare.operand == float("inf")  # type: ignore[union-attr]


def test_not_tagged_compiles_without_deprecated_operators() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Compiler("postgresql", NOW, correlated=False).compile(parse_rule({"not": {"tag": "vip"}}))
