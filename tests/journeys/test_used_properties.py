"""Which event properties a journey's runs get: what it uses, and what the catalogue carries."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeys.catalog import CATALOG_FILE, CatalogError, load_catalog
from journeys.used_properties import COUPON_PROPERTIES, template_uses, used_properties
from journeys.validate import load_journey, parse_journey, shipped_journey_files


def shipped(journey_id: str):
    return load_journey(next(p for p in shipped_journey_files() if p.stem == journey_id))


def test_cart_runs_get_the_cart_key_the_branch_flag_and_what_templates_read():
    uses = used_properties(shipped("cart_abandonment"))
    event = {
        "cart_id": "c1",
        "items": [{"name": "thermos"}],
        "low_stock": True,
        "shipping_address": "88 Century Avenue",
    }
    assert uses.of_trigger(event) == {k: v for k, v in event.items() if k != "shipping_address"}
    # A repeated trigger restarts the run with itself as the trigger: it needs the same.
    assert "items" in uses.of_signal("cart_updated", event)
    # An order is this cart's or another's by cart_id; nothing else of it travels.
    order = {"order_id": "o1", "cart_id": "c1", "total": 88, "shipping_address": "x"}
    assert uses.of_signal("order_placed", order) == {"cart_id": "c1"}


def test_signup_runs_get_none_of_the_signup_properties():
    uses = used_properties(shipped("new_user_coupon"))
    signup = {"channel": "app", "method": "phone", "referrer_phone": "+8613912345678"}
    assert uses.of_trigger(signup) == {}
    assert uses.of_signal("order_placed", {"order_id": "o1", "total": 88}) == {}


def test_a_coupon_issued_run_gets_its_coupon_from_the_trigger():
    uses = used_properties(shipped("coupon_expiry"))
    issued = {
        "coupon_code": "VIP50",
        "amount_fen": 5000,
        "min_spend_fen": 0,
        "expires_at": "2026-07-01T00:00:00+08:00",
        "campaign_note": "for our friend at +8613900000000",
    }
    assert set(uses.of_trigger(issued)) == COUPON_PROPERTIES
    assert uses.of_signal("coupon_redeemed", {"coupon_code": "VIP50", "order_id": "o"}) == {
        "coupon_code": "VIP50"
    }


JOURNEY = """
id: test_uses
name: Uses
trigger:
  event: product_viewed
  where: {category: {eq: beauty}}
goal:
  event: order_placed
  within: 7d
  where: {total: {gte: 50}}
steps:
  - id: look
    type: wait_for
    event: cart_updated
    where: {total_fen: {gte: 1000}}
    timeout: 1d
  - id: pricey
    type: branch
    if: {context: trigger.properties.price_fen, gt: 10000}
    then:
      - {id: done, type: exit}
"""


def test_filters_and_conditions_name_what_each_event_keeps():
    uses = used_properties(parse_journey(JOURNEY), templates=Path("/nonexistent"))
    assert uses.trigger == {"category", "price_fen"}
    assert uses.heard["order_placed"] == {"total"}
    assert uses.heard["cart_updated"] == {"total_fen"}


def test_the_catalogue_may_carry_a_property_to_every_run(tmp_path):
    text = CATALOG_FILE.read_text(encoding="utf-8")
    marked = text.replace(
        '      product_id: {type: string, description: "the product\'s id in the catalogue"}',
        '      product_id: {type: string, carry: true, description: "the product\'s id"}',
    )
    assert marked != text
    (tmp_path / "events.yaml").write_text(marked, encoding="utf-8")
    catalog = load_catalog(tmp_path / "events.yaml")
    assert catalog["product_viewed"].properties["product_id"].carry
    uses = used_properties(parse_journey(JOURNEY), catalog=catalog, templates=Path("/nonexistent"))
    assert uses.trigger == {"category", "price_fen", "product_id"}


def test_carry_must_be_a_boolean(tmp_path):
    (tmp_path / "events.yaml").write_text(
        "events:\n  e:\n    properties:\n      p: {type: string, carry: yes please}\n"
    )
    with pytest.raises(CatalogError, match=r"e\.p: carry must be true or false"):
        load_catalog(tmp_path / "events.yaml")


@pytest.mark.parametrize(
    ("source", "names", "coupon"),
    [
        ("{{ trigger.properties.cart_id }}", {"cart_id"}, False),
        ("{{ trigger.properties['cart_id'] }}", {"cart_id"}, False),
        ("{% set xs = trigger.properties.get('items') or [] %}{{ xs | length }}", {"items"}, False),
        ("{{ trigger.event }} {{ trigger.timestamp }} {{ coupon.code }}", set(), True),
        ("{% for k, v in trigger.properties.items() %}{{ v }}{% endfor %}", None, False),
        ("{{ trigger.properties | tojson }}", None, False),
        ("{% set t = trigger %}{{ t.properties.x }}", None, False),
        ("{{ trigger.properties.get(name) }}", None, False),
    ],
)
def test_templates_name_what_they_read_or_read_everything(source, names, coupon):
    read, reads_coupon = template_uses([source])
    assert read == (None if names is None else frozenset(names))
    assert reads_coupon is coupon


def test_a_template_that_reads_everything_gets_everything(tmp_path):
    (tmp_path / "dump_sms.yaml").write_text(
        "channel: sms\nlocales:\n  zh-CN:\n    body: '{{ trigger.properties }}'\n",
        encoding="utf-8",
    )
    journey = parse_journey(
        "id: dump\nname: Dump\ntrigger: {event: user_signed_up}\n"
        "steps:\n  - {id: s, type: send, channel: sms, template: dump_sms}\n"
    )
    uses = used_properties(journey, templates=tmp_path)
    assert uses.trigger is None
    assert uses.of_trigger({"referrer_phone": "+86139"}) == {"referrer_phone": "+86139"}
