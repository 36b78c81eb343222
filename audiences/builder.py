"""The console's audience builder: rows of form fields to a rule, and a rule back to rows.

Each row is one condition, optionally negated; the rows are combined with ``all`` or ``any``.
A row becomes exactly the mapping a marketer would write in YAML, and the whole is parsed by
:func:`audiences.rules.parse_rule`, so the builder accepts what the language accepts and its
problems are the language's own, located by row (``rule.all[2]`` is the third row).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from audiences.rules import AudienceError, Rule, parse_rule

# Each kind of row: its label and its fields with their defaults, in form order.
KINDS: dict[str, tuple[str, dict[str, str]]] = {
    "trait": ("trait", {"name": "", "op": "eq", "value": "", "type": "string"}),
    "tag": ("tag", {"value": ""}),
    "tier": ("member tier", {"op": "eq", "value": ""}),
    "signed_up": ("signed up", {"mode": "within", "span": "7d"}),
    "last_seen": ("last seen", {"mode": "within", "span": "30d"}),
    "event": (
        "event count",
        {
            "name": "",
            "count_op": "at_least",
            "count": "1",
            "within": "",
            "prop": "",
            "prop_op": "eq",
            "prop_value": "",
            "prop_type": "string",
        },
    ),
    "spent": ("total spent", {"op": "gte", "amount": "", "within": "90d"}),
    "coupon": ("coupon expiring", {"span": "48h"}),
    "open_cart": ("open cart", {"within": ""}),
    "subscribed": ("subscribed", {"channel": "sms", "topic": "marketing"}),
    "reachable": ("reachable", {"channel": "sms"}),
}
TYPES = ("string", "number", "bool", "timestamp")
# "total spent" is the sum of order_placed's ``total`` (yuan), as the shipped high_value has it.
SPENT_EVENT, SPENT_PROPERTY = "order_placed", "total"
_ROW_PATH = re.compile(r"^rule\.(?:all|any)\[(\d+)\](?:\.not)?\.?")


@dataclass
class Row:
    """One condition of the builder: its kind, whether it is negated, its fields as typed."""

    kind: str
    negate: bool = False
    fields: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @classmethod
    def new(cls, kind: str) -> Row:
        return cls(kind, fields=dict(KINDS[kind][1]))

    def get(self, name: str) -> str:
        return self.fields.get(name, KINDS[self.kind][1].get(name, "")).strip()


@dataclass
class Built:
    """The builder's rows as a rule: the mapping, and the parsed rule or its problem."""

    data: dict[str, Any]
    rule: Rule | None
    error: str = ""


def rows_from_form(form: dict[str, str]) -> tuple[str, list[Row]]:
    """The combinator and rows posted by the builder (``r3.kind``, ``r3.not``, ``r3.name``...)."""
    indexes = sorted(
        int(m.group(1)) for k in form if (m := re.fullmatch(r"r(\d+)\.kind", k)) is not None
    )
    rows = []
    for i in indexes:
        kind = form[f"r{i}.kind"]
        if kind not in KINDS:
            continue
        prefix = f"r{i}."
        fields = {k[len(prefix) :]: v for k, v in form.items() if k.startswith(prefix)}
        negate = fields.pop("not", "") == "1"
        fields.pop("kind")
        rows.append(Row(kind, negate, fields))
    return ("any" if form.get("combine") == "any" else "all"), rows


def build(combine: str, rows: list[Row]) -> Built:
    """The rule the rows make; a problem is also set on the row it names."""
    data = {combine: [_negated(row) for row in rows]}
    for row in rows:
        row.error = ""
    try:
        return Built(data, parse_rule(data, "rule"))
    except AudienceError as exc:
        found = _ROW_PATH.match(exc.path)
        if found is not None and int(found.group(1)) < len(rows):
            where = exc.path[found.end() :]
            rows[int(found.group(1))].error = f"{where}: {exc.message}" if where else exc.message
        return Built(data, None, str(exc))


def _negated(row: Row) -> dict[str, Any]:
    condition = row_condition(row)
    return {"not": condition} if row.negate else condition


def row_condition(row: Row) -> dict[str, Any]:
    """The YAML mapping of one row, not negated."""
    get = row.get
    match row.kind:
        case "trait":
            return {
                "trait": {"name": get("name"), **_compare(get("op"), get("value"), get("type"))}
            }
        case "tag":
            return {"tag": get("value")}
        case "tier":
            if get("op") == "eq":
                return {"tier": get("value")}
            return {"tier": _compare(get("op"), get("value"), "string")}
        case "signed_up" | "last_seen":
            return {row.kind: {get("mode"): get("span")}}
        case "event":
            body: dict[str, Any] = {"name": get("name")}
            if get("within"):
                body["within"] = get("within")
            body[get("count_op")] = _number(get("count"))
            if get("prop"):
                body["where"] = {
                    get("prop"): _compare(get("prop_op"), get("prop_value"), get("prop_type"))
                }
            return {"event": body}
        case "spent":
            spent: dict[str, Any] = {"name": SPENT_EVENT}
            if get("within"):
                spent["within"] = get("within")
            spent["sum"] = {"property": SPENT_PROPERTY, get("op"): _number(get("amount"))}
            return {"event": spent}
        case "coupon":
            return {"coupon": {"expiring_within": get("span")}}
        case "open_cart":
            return {"open_cart": {"within": get("within")} if get("within") else None}
        case "subscribed":
            return {"subscribed": {"channel": get("channel"), "topic": get("topic")}}
        case "reachable":
            return {"reachable": get("channel")}
    raise AudienceError("rule", f"unknown row kind {row.kind!r}")


def _number(text: str) -> Any:
    """``text`` as an int or float; as typed when it is neither, for the parser to refuse."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _value(text: str, vtype: str) -> Any:
    if vtype == "number":
        return _number(text)
    if vtype == "bool":
        return {"true": True, "false": False}.get(text.lower(), text)
    return text


def _inferred(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else "string"


def _compare(op: str, text: str, vtype: str) -> dict[str, Any]:
    """``{op: value}``, with ``type`` only where the value alone would not say it."""
    if op == "exists":
        body: dict[str, Any] = {"exists": text.lower() != "false"}
        return body | ({"type": vtype} if vtype != "string" else {})
    if op == "in":
        values = [_value(v.strip(), vtype) for v in text.split(",") if v.strip()]
        sample = values[0] if values else None
        body = {"in": values}
    else:
        sample = _value(text, vtype)
        body = {op: sample}
    if sample is not None and _inferred(sample) != vtype:
        body["type"] = vtype
    return body


def rows_from_rule(data: Any) -> tuple[str, list[Row]] | None:
    """The builder's rows for a rule mapping, or None when it has no builder form (nested
    groups, several property filters)."""
    if not isinstance(data, dict) or len(data) != 1:
        return None
    ((key, body),) = data.items()
    parts = body if key in ("all", "any") and isinstance(body, list) else [data]
    rows = []
    for part in parts:
        negate = isinstance(part, dict) and set(part) == {"not"}
        row = _row(part["not"] if negate else part)
        if row is None:
            return None
        row.negate = negate
        rows.append(row)
    return ("any" if key == "any" else "all"), rows


def _row(part: Any) -> Row | None:
    if not isinstance(part, dict) or len(part) != 1:
        return None
    ((kind, body),) = part.items()
    if kind == "tag" and isinstance(body, str):
        return Row(kind, fields={"value": body})
    if kind == "reachable" and isinstance(body, str):
        return Row(kind, fields={"channel": body})
    if kind == "tier":
        found = _compare_fields({"eq": body} if isinstance(body, str) else body)
        return None if found is None else Row(kind, fields={"op": found[0], "value": found[1]})
    if kind == "open_cart":
        within = body.get("within", "") if isinstance(body, dict) else ""
        return Row(kind, fields={"within": str(within)})
    if not isinstance(body, dict):
        return None
    if kind == "trait":
        found = _compare_fields({k: v for k, v in body.items() if k != "name"})
        if found is None:
            return None
        op, value, vtype = found
        return Row(
            kind,
            fields={"name": str(body.get("name", "")), "op": op, "value": value, "type": vtype},
        )
    if kind in ("signed_up", "last_seen") and len(body) == 1:
        ((mode, span),) = body.items()
        return Row(kind, fields={"mode": mode, "span": str(span)})
    if kind == "coupon":
        return Row(kind, fields={"span": str(body.get("expiring_within", ""))})
    if kind == "subscribed":
        return Row(kind, fields={k: str(v) for k, v in body.items()})
    if kind == "event":
        return _event_row(body)
    return None


def _event_row(body: dict[str, Any]) -> Row | None:
    within = str(body.get("within", ""))
    total = body.get("sum")
    if isinstance(total, dict):
        ops = [k for k in total if k != "property"]
        if (
            body.get("name") != SPENT_EVENT
            or total.get("property") != SPENT_PROPERTY
            or len(ops) != 1
        ):
            return None
        return Row("spent", fields={"op": ops[0], "amount": _text(total[ops[0]]), "within": within})
    fields = {
        "name": str(body.get("name", "")),
        "within": within,
        "count_op": "at_least",
        "count": "1",
    }
    for op in ("at_least", "at_most", "exactly"):
        if op in body:
            fields |= {"count_op": op, "count": _text(body[op])}
    where = body.get("where") or {}
    if not isinstance(where, dict) or len(where) > 1:
        return None
    for prop, spec in where.items():
        found = _compare_fields(spec)
        if found is None:
            return None
        fields |= {"prop": prop, "prop_op": found[0], "prop_value": found[1], "prop_type": found[2]}
    return Row("event", fields=fields)


def _compare_fields(body: Any) -> tuple[str, str, str] | None:
    """(op, value as typed in the form, type) of a comparison mapping."""
    if not isinstance(body, dict):
        return None
    ops = [k for k in body if k != "type"]
    if len(ops) != 1:
        return None
    op = ops[0]
    operand = body[op]
    values = operand if isinstance(operand, list) else [operand]
    # `exists` takes a bool whatever the type; its type is string unless given.
    inferred = _inferred(values[0]) if values and op != "exists" else "string"
    vtype = body.get("type") or inferred
    return op, ", ".join(_text(v) for v in values), str(vtype)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
