"""The console's audience builder: every kind of row makes the rule its YAML makes, the YAML
it shows is what ``lifecycle audiences validate`` accepts, and a problem lands on its row."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from audiences.audience import parse_audience_text
from audiences.builder import KINDS, Row, build, rows_from_form, rows_from_rule
from audiences.rules import parse_rule
from audiences.saved import rule_yaml

# (kind, the row's fields, the condition as a marketer writes it in YAML)
CLAUSES: list[tuple[str, dict[str, str], str]] = [
    (
        "trait",
        {"name": "city", "op": "eq", "value": "上海", "type": "string"},
        "trait: {name: city, eq: 上海}",
    ),
    (
        "trait",
        {"name": "age", "op": "gte", "value": "30", "type": "number"},
        "trait: {name: age, gte: 30}",
    ),
    (
        "trait",
        {"name": "vip", "op": "eq", "value": "true", "type": "bool"},
        "trait: {name: vip, eq: true}",
    ),
    (
        "trait",
        {"name": "city", "op": "in", "value": "上海, 北京", "type": "string"},
        "trait: {name: city, in: [上海, 北京]}",
    ),
    (
        "trait",
        {
            "name": "birthday",
            "op": "gte",
            "value": "2026-06-18T00:00:00+08:00",
            "type": "timestamp",
        },
        "trait: {name: birthday, gte: '2026-06-18T00:00:00+08:00', type: timestamp}",
    ),
    (
        "trait",
        {"name": "code", "op": "eq", "value": "007", "type": "string"},
        "trait: {name: code, eq: '007'}",
    ),
    (
        "trait",
        {"name": "city", "op": "exists", "value": "false", "type": "string"},
        "trait: {name: city, exists: false}",
    ),
    ("tag", {"value": "母婴人群"}, "tag: 母婴人群"),
    ("tier", {"op": "eq", "value": "金卡"}, "tier: 金卡"),
    ("tier", {"op": "in", "value": "金卡, 钻石"}, "tier: {in: [金卡, 钻石]}"),
    ("signed_up", {"mode": "within", "span": "7d"}, "signed_up: {within: 7d}"),
    ("signed_up", {"mode": "before", "span": "30d"}, "signed_up: {before: 30d}"),
    ("last_seen", {"mode": "not_within", "span": "30d"}, "last_seen: {not_within: 30d}"),
    (
        "event",
        {"name": "order_placed", "count_op": "at_least", "count": "3", "within": "30d"},
        "event: {name: order_placed, within: 30d, at_least: 3}",
    ),
    (
        "event",
        {"name": "order_placed", "count_op": "exactly", "count": "0", "within": ""},
        "event: {name: order_placed, exactly: 0}",
    ),
    (
        "event",
        {
            "name": "product_viewed",
            "count_op": "at_most",
            "count": "2",
            "within": "7d",
            "prop": "category",
            "prop_op": "eq",
            "prop_value": "beauty",
            "prop_type": "string",
        },
        "event: {name: product_viewed, within: 7d, at_most: 2, where: {category: {eq: beauty}}}",
    ),
    (
        "spent",
        {"op": "gte", "amount": "2000", "within": "90d"},
        "event: {name: order_placed, within: 90d, sum: {property: total, gte: 2000}}",
    ),
    ("coupon", {"span": "48h"}, "coupon: {expiring_within: 48h}"),
    ("open_cart", {"within": "7d"}, "open_cart: {within: 7d}"),
    ("open_cart", {"within": ""}, "open_cart: null"),
    (
        "subscribed",
        {"channel": "sms", "topic": "marketing"},
        "subscribed: {channel: sms, topic: marketing}",
    ),
    ("reachable", {"channel": "email"}, "reachable: email"),
]


def form_of(combine: str, rows: list[tuple[str, bool, dict[str, str]]]) -> dict[str, str]:
    """The fields the builder's form posts for these rows."""
    form = {"csrf": "x", "combine": combine, "action": "count"}
    for i, (kind, negate, fields) in enumerate(rows):
        form[f"r{i}.kind"] = kind
        if negate:
            form[f"r{i}.not"] = "1"
        form |= {f"r{i}.{k}": v for k, v in fields.items()}
    return form


def test_every_kind_of_row_is_covered() -> None:
    assert {kind for kind, _, _ in CLAUSES} == set(KINDS)


@pytest.mark.parametrize(("kind", "fields", "written"), CLAUSES, ids=lambda v: str(v)[:40])
@pytest.mark.parametrize("negate", [False, True])
def test_a_row_makes_the_rule_its_yaml_makes(
    kind: str, fields: dict[str, str], written: str, negate: bool
) -> None:
    combine, rows = rows_from_form(form_of("any", [(kind, negate, fields)]))
    built = build(combine, rows)
    condition = yaml.safe_load(written)
    expected = parse_rule({"any": [{"not": condition} if negate else condition]})
    assert built.error == ""
    assert built.rule == expected
    # The YAML shown is what `lifecycle audiences validate` accepts, meaning the same rule.
    assert parse_audience_text(rule_yaml(built.data)).rule == expected
    # And an edit of the saved rule opens the same rows.
    reopened = rows_from_rule(yaml.safe_load(rule_yaml(built.data)))
    assert reopened is not None
    assert build(*reopened).rule == expected


def test_rows_combine_with_all_and_a_new_row_has_its_defaults() -> None:
    rows = [Row.new("tag"), Row.new("coupon")]
    rows[0].fields["value"] = "vip"
    built = build("all", rows)
    assert built.rule == parse_rule(
        yaml.safe_load("all: [{tag: vip}, {coupon: {expiring_within: 48h}}]")
    )


@pytest.mark.parametrize(
    ("fields", "where", "says"),
    [
        (
            {"name": "age", "op": "gte", "value": "thirty", "type": "number"},
            "trait.gte",
            "expected a number",
        ),
        (
            {"name": "1city", "op": "eq", "value": "x", "type": "string"},
            "trait.name",
            "letters, digits",
        ),
        (
            {"name": "vip", "op": "contains", "value": "true", "type": "bool"},
            "trait.contains",
            "does not apply",
        ),
    ],
)
def test_a_problem_is_set_on_the_row_it_names(
    fields: dict[str, str], where: str, says: str
) -> None:
    form = form_of("all", [("tag", False, {"value": "ok"}), ("trait", True, fields)])
    combine, rows = rows_from_form(form)
    built = build(combine, rows)
    assert built.rule is None
    assert rows[0].error == ""
    assert rows[1].error.startswith(f"{where}: ") and says in rows[1].error


def test_a_bad_duration_or_count_is_the_languages_own_problem() -> None:
    form = form_of(
        "all",
        [
            ("signed_up", False, {"mode": "within", "span": "7x"}),
            ("event", False, {"name": "order_placed", "count_op": "at_least", "count": "two"}),
        ],
    )
    combine, rows = rows_from_form(form)
    built = build(combine, rows)
    assert "malformed duration" in rows[0].error
    assert built.error.startswith("rule.all[0].signed_up.within: ")


def test_a_rule_without_a_form_does_not_open_in_the_builder() -> None:
    nested: Any = yaml.safe_load("all: [{any: [{tag: a}, {tag: b}]}]")
    assert rows_from_rule(nested) is None
    two_filters = yaml.safe_load("event: {name: e, where: {a: {eq: 1}, b: {eq: 2}}}")
    assert rows_from_rule(two_filters) is None
