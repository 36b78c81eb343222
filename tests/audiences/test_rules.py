"""Rules as marketers write them: bad ones are refused with the path inside the rule, values
never reach the SQL text, and the shipped audiences pick exactly the users they promise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from conftest import Database
from reference import (
    ConsentRow,
    CouponRow,
    EventRow,
    Population,
    PushTokenRow,
    UserRow,
)
from seed import seed

from audiences.audience import (
    SHIPPED,
    Audience,
    audience_from_data,
    load_audience,
    parse_audience_text,
    shipped_audiences,
)
from audiences.rules import AudienceError, parse_rule
from store.models import User

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
D, H = timedelta(days=1), timedelta(hours=1)
INJECTION = "x'); DROP TABLE users; --"

# -- bad rules ----------------------------------------------------------------------------

BAD_RULES: list[tuple[str, Any, str, str]] = [
    # (id, rule, path inside the rule, part of the message)
    ("unknown-operator", {"trait": {"name": "age", "between": [1, 2]}}, "rule.trait.between",
     "unknown operator; use one of eq, ne, in"),
    ("unknown-condition", {"all": [{"tag": "vip"}, {"segment": "vip"}]}, "rule.all[1].segment",
     "unknown condition 'segment'"),
    ("number-given-text", {"trait": {"name": "age", "type": "number", "gte": "x"}},
     "rule.trait.gte", "expected a number, got 'x'"),
    ("tier-given-number", {"tier": {"eq": 3}}, "rule.tier.eq", "expected text, got 3"),
    ("in-mixed-types", {"trait": {"name": "city", "in": ["上海", 3]}}, "rule.trait.in",
     "expected text, got 3"),
    ("timestamp-not-iso", {"trait": {"name": "t", "type": "timestamp", "gt": "yesterday"}},
     "rule.trait.gt", "ISO-8601"),
    ("timestamp-no-offset",
     {"trait": {"name": "t", "type": "timestamp", "gt": "2026-03-01T00:00:00"}},
     "rule.trait.gt", "with its offset"),
    ("unknown-type", {"trait": {"name": "age", "type": "integer", "eq": 1}}, "rule.trait.type",
     "type must be string, number, bool or timestamp"),
    ("malformed-duration", {"all": [{"tag": "vip"}, {"event": {"name": "o", "within": "3x"}}]},
     "rule.all[1].event.within", "malformed duration '3x'"),
    ("duration-not-text", {"signed_up": {"within": 7}}, "rule.signed_up.within",
     "a duration is text"),
    ("coupon-duration", {"coupon": {"expiring_within": "two days"}},
     "rule.coupon.expiring_within", "malformed duration"),
    ("in-empty", {"trait": {"name": "city", "in": []}}, "rule.trait.in",
     "`in` takes a non-empty list"),
    ("tier-in-empty", {"tier": {"in": []}}, "rule.tier.in", "`in` takes a non-empty list"),
    ("exists-yes", {"trait": {"name": "city", "exists": "yes"}}, "rule.trait.exists",
     "`exists` takes true or false"),
    ("negative-count", {"event": {"name": "order_placed", "at_least": -1}},
     "rule.event.at_least", "whole number ≥ 0"),
    ("count-as-text", {"event": {"name": "order_placed", "exactly": "3"}}, "rule.event.exactly",
     "whole number"),
    ("count-and-sum",
     {"event": {"name": "o", "at_least": 2, "sum": {"property": "total", "gte": 2000}}},
     "rule.event", "either a count (at_least, ...) or `sum`, not both"),
    ("two-counts", {"event": {"name": "o", "at_least": 1, "exactly": 2}}, "rule.event",
     "at most one of at_least, at_most, exactly"),
    ("sum-given-text", {"event": {"name": "o", "sum": {"property": "total", "gte": "2000"}}},
     "rule.event.sum.gte", "expected a number"),
    ("sum-two-ops", {"event": {"name": "o", "sum": {"property": "total", "gt": 1, "lt": 9}}},
     "rule.event.sum", "one of gt, gte, lt, lte"),
    ("bool-gt", {"trait": {"name": "vip", "gt": True}}, "rule.trait.gt",
     "`gt` does not apply to a bool"),
    ("contains-on-bool", {"trait": {"name": "city", "type": "bool", "contains": True}},
     "rule.trait.contains", "`contains` does not apply to a bool"),
    ("name-with-quote", {"trait": {"name": "ci'ty", "eq": "上海"}}, "rule.trait.name",
     "letters, digits and '_'"),
    ("name-with-double-quote", {"trait": {"name": 'ci"ty', "eq": "上海"}}, "rule.trait.name",
     "letters, digits and '_'"),
    ("name-with-space", {"trait": {"name": "home city", "eq": "上海"}}, "rule.trait.name",
     "letters, digits and '_'"),
    ("name-with-dot", {"trait": {"name": "address.city", "eq": "上海"}}, "rule.trait.name",
     "letters, digits and '_'"),
    ("name-missing", {"trait": {"eq": "上海"}}, "rule.trait.name", "is required"),
    ("property-name", {"event": {"name": "o", "where": {"cat egory": {"eq": "beauty"}}}},
     "rule.event.where.cat egory", "letters, digits and '_'"),
    ("sum-property-name", {"event": {"name": "o", "sum": {"property": "to$tal", "gte": 1}}},
     "rule.event.sum.property", "letters, digits and '_'"),
    ("no-operator", {"trait": {"name": "age"}}, "rule.trait", "give exactly one operator"),
    ("two-operators", {"trait": {"name": "age", "gt": 1, "lt": 9}}, "rule.trait",
     "give exactly one operator"),
    ("all-not-a-list", {"all": {"tag": "vip"}}, "rule.all", "`all` takes a list of rules"),
    ("two-keys", {"tag": "vip", "tier": "金卡"}, "rule", "exactly one key"),
    ("not-empty", {"not": None}, "rule.not", "exactly one key"),
    ("list-as-rule", [{"tag": "vip"}], "rule", "a rule is a mapping"),
    ("empty-tag", {"tag": ""}, "rule.tag", "`tag` takes the tag's name"),
    ("unknown-channel", {"reachable": "fax"}, "rule.reachable", "one of sms, email, push"),
    ("unknown-topic", {"subscribed": {"channel": "sms", "topic": "news"}},
     "rule.subscribed.topic", "one of marketing, transactional"),
    ("two-windows", {"signed_up": {"within": "7d", "before": "30d"}}, "rule.signed_up",
     "exactly one of within or before"),
    ("event-without-name", {"event": {"within": "7d"}}, "rule.event.name",
     "the event's name is required"),
    ("event-unknown-field", {"event": {"name": "o", "when": "7d"}}, "rule.event.when",
     "unknown field"),
    ("coupon-without-window", {"coupon": {}}, "rule.coupon", "needs `expiring_within`"),
    ("deep", {"any": [{"not": {"all": [{"tag": "x"}, {"trait": {"name": "age", "lt": []}}]}}]},
     "rule.any[0].not.all[1].trait.lt", "cannot compare with list"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "path", "message"), [pytest.param(*case[1:], id=case[0]) for case in BAD_RULES]
)
def test_a_bad_rule_names_the_place_and_the_problem(rule: Any, path: str, message: str) -> None:
    with pytest.raises(AudienceError) as caught:
        parse_rule(rule)
    assert caught.value.path == path
    assert message in caught.value.message
    assert str(caught.value) == f"{path}: {caught.value.message}"


def test_errors_in_yaml_text_and_files_name_the_source(tmp_path: Path) -> None:
    inline = "all:\n  - tag: 母婴人群\n  - event: {name: order_placed, within: 3x}\n"
    with pytest.raises(AudienceError) as caught:
        parse_audience_text(inline)
    assert caught.value.path == "<inline>: rule.all[1].event.within"

    path = tmp_path / "vip.yaml"
    path.write_text('id: vip\nname: VIP\nrule:\n  trait: {name: age, exists: "yes"}\n')
    with pytest.raises(AudienceError) as caught:
        load_audience(path)
    assert caught.value.path == f"{path}: rule.trait.exists"

    path.write_text("id: vip\nrule: {tag: vip}\naudience: everyone\n")
    with pytest.raises(AudienceError) as caught:
        load_audience(path)
    assert caught.value.path == f"{path}: audience"

    path.write_text("id: VIP!\nrule: {tag: vip}\n")
    with pytest.raises(AudienceError) as caught:
        load_audience(path)
    assert caught.value.path == f"{path}: id"

    with pytest.raises(AudienceError, match="not valid YAML/JSON"):
        parse_audience_text("all: [tag: x")
    with pytest.raises(AudienceError, match="cannot read"):
        load_audience(tmp_path / "missing.yaml")


def test_a_quoted_operand_makes_a_text_comparison() -> None:
    """The type follows the operand unless declared: ``gte: "18"`` compares text, which a
    numeric trait never matches; ``type: number`` says what is meant."""
    rule = parse_rule({"trait": {"name": "age", "gte": "18"}})
    assert rule.compare.type == "string"  # type: ignore[union-attr]
    with pytest.raises(AudienceError, match="expected a number"):
        parse_rule({"trait": {"name": "age", "type": "number", "gte": "18"}})


# -- values are bound, never pasted -------------------------------------------------------


def person(user_id: str, **fields: Any) -> UserRow:
    values: dict[str, Any] = {"created_at": NOW - 365 * D, "last_seen_at": NOW - D} | fields
    return UserRow(id=user_id, **values)


def members(session: Any, rule: Any) -> set[str]:
    """The members by every way of asking, checked to agree."""
    audience = audience_from_data(rule)
    found = set(audience.members(session, now=NOW))
    assert audience.count(session, now=NOW) == len(found)
    ids = list(session.scalars(sa.select(User.id)))
    assert {u for u in ids if audience.contains(session, user_id=u, now=NOW)} == found
    return found


def test_names_that_could_break_out_of_sql_are_refused() -> None:
    for name in (INJECTION, '"', "%", "_x'", "a\\b", "a;b", "a-b", "$.a"):
        for rule, path in (
            ({"trait": {"name": name, "eq": 1}}, "rule.trait.name"),
            ({"event": {"name": "o", "where": {name: {"eq": 1}}}}, f"rule.event.where.{name}"),
            ({"event": {"name": "o", "sum": {"property": name, "gt": 1}}},
             "rule.event.sum.property"),
        ):  # fmt: skip
            with pytest.raises(AudienceError) as caught:
                parse_rule(rule)
            assert caught.value.path == path


def test_values_are_matched_literally(db: Database) -> None:
    notes = {
        "percent": "50%",
        "only_percent": "%",
        "underscore": "a_b",
        "no_underscore": "ab",
        "injection": INJECTION,
        "quote": 'say "hi"',
        "apostrophe": "it's",
        "backslash": "C:\\temp",
        "plain": "plain",
    }
    population = Population(
        users=[person(uid, traits={"note": note}) for uid, note in notes.items()]
    )
    population.users[0].tags = [INJECTION]
    population.users[1].member_tier = "%"
    population.events.append(EventRow("quote", INJECTION, NOW - H, {"category": "_"}))
    population.events.append(EventRow("plain", "order_placed", NOW - H, {"category": "x"}))

    def note(spec: dict[str, Any]) -> dict[str, Any]:
        return {"trait": {"name": "note", **spec}}

    with db.factory() as session:
        seed(session, population, at=NOW)
        assert members(session, note({"contains": "%"})) == {"percent", "only_percent"}
        assert members(session, note({"eq": "%"})) == {"only_percent"}
        assert members(session, note({"starts_with": "a_"})) == {"underscore"}
        assert members(session, note({"contains": "_"})) == {"underscore"}
        assert members(session, note({"starts_with": "%"})) == {"only_percent"}
        assert members(session, note({"in": ["%", "_"]})) == {"only_percent"}
        assert members(session, note({"eq": INJECTION})) == {"injection"}
        assert members(session, note({"contains": "'); DROP"})) == {"injection"}
        assert members(session, note({"contains": '"'})) == {"quote"}
        assert members(session, note({"contains": "'"})) == {"injection", "apostrophe"}
        assert members(session, note({"contains": "\\"})) == {"backslash"}
        assert members(session, note({"eq": "C:\\temp"})) == {"backslash"}
        assert members(session, note({"gt": "it'"})) == {
            "apostrophe",
            "plain",
            "quote",
            "injection",
        }
        assert members(session, {"tag": INJECTION}) == {"percent"}
        assert members(session, {"tag": "%"}) == set()
        assert members(session, {"tier": "%"}) == {"only_percent"}
        assert members(session, {"tier": {"contains": "%"}}) == {"only_percent"}
        assert members(session, {"tier": {"starts_with": "_"}}) == set()
        assert members(session, {"event": {"name": INJECTION}}) == {"quote"}
        assert members(session, {"event": {"name": "%"}}) == set()
        assert members(
            session, {"event": {"name": "%", "at_most": 0, "where": {"category": {"eq": "_"}}}}
        ) == set(notes)
        assert members(
            session, {"event": {"name": INJECTION, "where": {"category": {"eq": "_"}}}}
        ) == {"quote"}
        # The statements ran with the text as data: the table and its rows are all there.
        assert sa.inspect(session.connection()).has_table("users")
        assert session.scalar(sa.select(sa.func.count()).select_from(User)) == len(notes)
        session.rollback()


# -- the shipped audiences ----------------------------------------------------------------


def test_the_shipped_audiences_load() -> None:
    shipped = shipped_audiences()
    assert sorted(shipped) == [
        "cart_abandoners",
        "coupons_expiring_48h",
        "dormant_30d",
        "high_value",
        "mother_and_baby",
        "new_users_7d",
    ]
    for audience in shipped.values():
        assert audience.name and audience.description


def order(user_id: str, ago: timedelta, **properties: Any) -> EventRow:
    return EventRow(user_id, "order_placed", NOW - ago, properties)


def signed_up(user_id: str, ago: timedelta) -> EventRow:
    return EventRow(user_id, "user_signed_up", NOW - ago, {})


def cart(user_id: str, ago: timedelta, **properties: Any) -> EventRow:
    return EventRow(user_id, "cart_updated", NOW - ago, properties)


def shipped_population() -> Population:
    """A user (or a few) on each side of every shipped audience's edges. Unless set, a user
    signed up a year ago, was seen yesterday, and has no phone, email, token or events."""
    users = [
        # new_users_7d
        person("new", created_at=NOW - 2 * D),
        person("new_at_the_edge", created_at=NOW - 7 * D),
        person("new_and_ordered", created_at=NOW - D),
        person("new_orders_later", created_at=NOW - D),
        person("new_8_days_ago", created_at=NOW - 8 * D),
        person("new_viewer_only", created_at=NOW - 2 * D),  # first seen, never signed up
        person("signed_up_8_days_ago_seen_now", created_at=NOW - 2 * D),
        # dormant_30d
        person("dormant_push", last_seen_at=NOW - 40 * D),
        person("dormant_never_seen_sms", last_seen_at=None, phone="+8613800138000"),
        person("dormant_sms_opted_out", last_seen_at=NOW - 40 * D, phone="+8613800138001"),
        person("dormant_sms_other_topic", last_seen_at=NOW - 31 * D, phone="+8613800138002"),
        person("dormant_empty_phone", last_seen_at=NOW - 31 * D, phone=""),
        person("dormant_email_only", last_seen_at=NOW - 31 * D, email="d@example.com"),
        person("seen_29_days_ago", last_seen_at=NOW - 29 * D, phone="+8613800138003"),
        # cart_abandoners
        person("cart_open"),
        person("cart_ordered"),
        person("cart_other_cart_ordered"),
        person("cart_ordered_before"),
        person("cart_8_days_ago"),
        person("cart_without_id"),
        person("cart_numeric_id"),
        # coupons_expiring_48h
        person("coupon_tomorrow"),
        person("coupon_at_48h"),
        person("coupon_redeemed"),
        person("coupon_expired"),
        person("coupon_in_3_days"),
        # high_value
        person("three_orders"),
        person("spent_2000"),
        person("spent_1200_and_800"),
        person("two_orders_1999_5"),
        person("big_orders_too_old"),
        # mother_and_baby
        person("tagged_mother_baby", tags=["母婴人群"]),
        person("bought_mother_baby", tags=["美妆"]),
        person("bought_mother_baby_long_ago"),
        person("tagged_similar", tags=["母婴", "母婴人群x"]),
    ]
    events = [
        *(
            signed_up(user_id, ago)
            for user_id, ago in (
                ("new", 2 * D),
                ("new_at_the_edge", 7 * D),
                ("new_and_ordered", D),
                ("new_orders_later", D),
                ("new_8_days_ago", 8 * D),
                ("signed_up_8_days_ago_seen_now", 8 * D),
            )
        ),
        EventRow("new_viewer_only", "product_viewed", NOW - 2 * D, {"product_id": "p1"}),
        order("new_and_ordered", H),
        order("new_orders_later", -H),  # after now: not yet
        cart("cart_open", 2 * D, cart_id="c1"),
        cart("cart_ordered", 2 * D, cart_id="c2"),
        order("cart_ordered", D, cart_id="c2"),
        cart("cart_other_cart_ordered", 2 * D, cart_id="c3"),
        order("cart_other_cart_ordered", D, cart_id="c4"),
        order("cart_ordered_before", 3 * D, cart_id="c5"),
        cart("cart_ordered_before", 2 * D, cart_id="c5"),
        cart("cart_8_days_ago", 8 * D, cart_id="c6"),
        cart("cart_without_id", D),
        cart("cart_numeric_id", D, cart_id=7),
        *(order("three_orders", n * D, total=10, category="beauty") for n in (1, 30, 89)),
        order("spent_2000", 10 * D, total=2000),
        order("spent_1200_and_800", 10 * D, total=1200),
        order("spent_1200_and_800", 80 * D, total=800),
        order("two_orders_1999_5", 10 * D, total=1000),
        order("two_orders_1999_5", 20 * D, total=999.5),
        *(order("big_orders_too_old", n * D, total=5000) for n in (91, 92, 100)),
        order("bought_mother_baby", 100 * D, category="mother_baby", total=99),
        order("bought_mother_baby_long_ago", 181 * D, category="mother_baby", total=99),
    ]
    coupons = [
        CouponRow("coupon_tomorrow", NOW + 24 * H),
        CouponRow("coupon_at_48h", NOW + 48 * H),
        CouponRow("coupon_redeemed", NOW + 24 * H, redeemed_at=NOW - H),
        CouponRow("coupon_expired", NOW - H),
        CouponRow("coupon_in_3_days", NOW + 72 * H),
    ]
    consents = [
        ConsentRow("dormant_sms_opted_out", "sms", "marketing", "unsubscribed"),
        ConsentRow("dormant_sms_other_topic", "sms", "transactional", "unsubscribed"),
        ConsentRow("dormant_push", "sms", "marketing", "unsubscribed"),
    ]
    tokens = [PushTokenRow("dormant_push", "apns-1")]
    return Population(users, events, coupons, consents, tokens)


SHIPPED_MEMBERS = {
    "new_users_7d": {"new", "new_at_the_edge", "new_orders_later"},
    "dormant_30d": {"dormant_push", "dormant_never_seen_sms", "dormant_sms_other_topic"},
    "cart_abandoners": {"cart_open", "cart_other_cart_ordered", "cart_ordered_before"},
    "coupons_expiring_48h": {"coupon_tomorrow", "coupon_at_48h"},
    "high_value": {"three_orders", "spent_2000", "spent_1200_and_800"},
    "mother_and_baby": {"tagged_mother_baby", "bought_mother_baby"},
}


@pytest.mark.parametrize("audience_id", sorted(SHIPPED_MEMBERS))
def test_a_shipped_audience_picks_exactly_its_users(db: Database, audience_id: str) -> None:
    population = shipped_population()
    audience = shipped_audiences()[audience_id]
    raw = yaml.safe_load((SHIPPED / f"{audience_id}.yaml").read_text(encoding="utf-8"))["rule"]
    assert population.members(raw, NOW) == SHIPPED_MEMBERS[audience_id]  # the reference agrees
    with db.factory() as session:
        seed(session, population, at=NOW)
        assert set(audience.members(session, now=NOW)) == SHIPPED_MEMBERS[audience_id]
        first = audience.members(session, now=NOW, limit=2)
        rest = audience.members(session, now=NOW, after=first[-1])
        assert len(first) == 2 and set(first + rest) == SHIPPED_MEMBERS[audience_id]
        assert audience.count(session, now=NOW) == len(SHIPPED_MEMBERS[audience_id])
        for user in population.users:
            expected = user.id in SHIPPED_MEMBERS[audience_id]
            assert audience.contains(session, user_id=user.id, now=NOW) is expected, user.id
        assert audience.contains(session, user_id="nobody", now=NOW) is False
        session.rollback()


def explained(db: Database, audience: Audience, user_ids: list[str]) -> dict[str, list[Any]]:
    with db.factory() as session:
        seed(session, shipped_population(), at=NOW)
        result = audience.explain(session, user_ids=user_ids, now=NOW)
        session.rollback()
    return result


def test_explain_says_which_part_matched(db: Database) -> None:
    shipped = shipped_audiences()
    why = explained(db, shipped["high_value"], ["three_orders", "spent_2000", "two_orders_1999_5"])
    assert why == {
        "three_orders": [
            ("order_placed at least 3× within 90d", True),
            ("order_placed sum of total gte 2000 within 90d", False),
        ],
        "spent_2000": [
            ("order_placed at least 3× within 90d", False),
            ("order_placed sum of total gte 2000 within 90d", True),
        ],
        "two_orders_1999_5": [
            ("order_placed at least 3× within 90d", False),
            ("order_placed sum of total gte 2000 within 90d", False),
        ],
    }

    why = explained(db, shipped["new_users_7d"], ["new", "new_and_ordered", "new_8_days_ago"])
    assert {user: [held for _, held in parts] for user, parts in why.items()} == {
        "new": [True, True],
        "new_and_ordered": [True, False],
        "new_8_days_ago": [False, True],
    }
    assert why["new"][0][0] == "user_signed_up at least 1× within 7d"
    assert why["new"][1][0].startswith("order_placed exactly 0×")

    why = explained(
        db, shipped["mother_and_baby"], ["tagged_mother_baby", "bought_mother_baby", "ghost"]
    )
    assert why == {
        "tagged_mother_baby": [
            ("tagged 母婴人群", True),
            ("order_placed at least 1× within 180d, category eq 'mother_baby'", False),
        ],
        "bought_mother_baby": [
            ("tagged 母婴人群", False),
            ("order_placed at least 1× within 180d, category eq 'mother_baby'", True),
        ],
    }

    why = explained(db, shipped["cart_abandoners"], ["cart_open", "cart_ordered"])
    assert why == {
        "cart_open": [("open cart (updated within 7d)", True)],
        "cart_ordered": [("open cart (updated within 7d)", False)],
    }

    why = explained(db, shipped["dormant_30d"], ["dormant_push", "dormant_sms_opted_out"])
    assert [held for _, held in why["dormant_push"]] == [True, True]
    assert [held for _, held in why["dormant_sms_opted_out"]] == [True, False]
    assert why["dormant_push"][0][0] == "not seen for 30d"
