"""The builder's edits on a loaded journey that the console's pages rely on: a step's type
changed in place, and a send step's A/B variants as form rows (added, removed, and kept as
written when the rows cannot hold them)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from journeys.yaml_edits import add_variant, remove_variant, retype_step
from journeys.yaml_form import from_form, settings_of, steps_of, to_rows

JOURNEY = """\
id: edits
name: Edits
trigger: {event: product_viewed}
steps:
  - {id: hello, type: send, channel: sms, template: cart_low_stock_sms, topic: marketing}
  - id: split
    type: branch
    if: {context: trigger.properties.low_stock, eq: true}
    then:
      - {id: inner, type: wait, duration: 1h}
  - id: ab
    type: send
    channel: sms
    variants:
      - {id: a, template: cart_low_stock_sms}
      - {id: b, template: sale_preheat_sms, weight: 3}
"""


def loaded() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(JOURNEY)
    return data


def through_rows(data: dict[str, Any]) -> dict[str, Any]:
    return from_form(settings_of(data), to_rows(steps_of(data)))


def test_a_new_type_keeps_the_id_and_place_and_drops_what_it_cannot_hold() -> None:
    data = loaded()
    retype_step(data, "steps[1]", "wait_for")
    assert data["steps"][1] == {"id": "split", "type": "wait_for"}  # if, then: gone
    retype_step(data, "steps[0]", "send")  # the same type: nothing lost
    assert data["steps"][0]["template"] == "cart_low_stock_sms"
    retype_step(data, "steps[0]", "exit")
    assert [s["id"] for s in data["steps"]] == ["hello", "split", "ab"]
    assert data["steps"][0] == {"id": "hello", "type": "exit"}
    with pytest.raises(ValueError, match="no step type"):
        retype_step(data, "steps[0]", "sleep")
    with pytest.raises(ValueError, match="no step"):
        retype_step(data, "steps[1].then[0]", "exit")  # went with the branch's then


def test_variants_are_rows_and_come_back_as_they_were() -> None:
    data = loaded()
    row = to_rows(steps_of(data))[-1]
    assert row.variants() == [
        {"id": "a", "template": "cart_low_stock_sms"},
        {"id": "b", "template": "sale_preheat_sms", "weight": "3"},
    ]
    assert row.get("more") == ""
    assert through_rows(data) == data
    # A row left blank is no variant.
    rows = to_rows(steps_of(data))
    rows[-1].fields |= {"variants.2.id": "", "variants.2.template": ""}
    assert from_form(settings_of(data), rows) == data


@pytest.mark.parametrize(
    "variants",
    [
        [],
        [{"id": 1, "template": "x"}],
        [{"id": "a", "template": "x", "note": "extra"}],
        [{}],
        "a, b",
    ],
    ids=["empty", "number id", "unknown key", "empty variant", "not a list"],
)
def test_variants_the_rows_cannot_hold_are_kept_as_written(variants: Any) -> None:
    data = loaded()
    data["steps"][2]["variants"] = variants
    row = to_rows(steps_of(data))[-1]
    assert row.variants() == [] and "variants" in row.get("more")
    assert through_rows(data) == data


def test_variants_are_added_and_removed() -> None:
    data = loaded()
    add_variant(data, "steps[2]")
    assert data["steps"][2]["variants"][-1] == {"id": "c", "template": "sale_preheat_sms"}
    remove_variant(data, "steps[2]", 0)
    assert [v["id"] for v in data["steps"][2]["variants"]] == ["b", "c"]
    # A plain send becomes an A/B test of its template; the last variant removed, none stay.
    add_variant(data, "steps[0]")
    assert "template" not in data["steps"][0]
    assert data["steps"][0]["variants"] == [
        {"id": "a", "template": "cart_low_stock_sms"},
        {"id": "b", "template": "cart_low_stock_sms"},
    ]
    remove_variant(data, "steps[0]", 1)
    remove_variant(data, "steps[0]", 0)
    assert "variants" not in data["steps"][0]
    with pytest.raises(ValueError, match="no variant"):
        remove_variant(data, "steps[2]", 5)
