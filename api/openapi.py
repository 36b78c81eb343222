"""The ingestion API's request and response bodies, as OpenAPI declares them.

The endpoints read their bodies themselves (gzip, size limits, per-item judgement), so
FastAPI cannot infer these; they are attached to each operation as ``openapi_extra``. A batch
item is declared as any object on purpose: items are judged one by one and a wrong one is
listed in the 200 answer's ``refused``, never a reason to refuse the batch.
"""

from __future__ import annotations

from typing import Any

from triggers.segment import MESSAGE_TYPES

_ID = {"type": "string", "minLength": 1, "maxLength": 255}
_INSTANT = {"type": "string", "format": "date-time"}
_OBJECT: dict[str, Any] = {"type": "object"}

_COMMON: dict[str, Any] = {
    "userId": _ID,
    "anonymousId": _ID,
    "messageId": {**_ID, "description": "Stored once: a retry with the same id is a no-op."},
    "timestamp": {**_INSTANT, "description": "When it happened (device clock)."},
    "originalTimestamp": _INSTANT,
    "sentAt": {**_INSTANT, "description": "When the device sent it; corrects its clock."},
    "context": _OBJECT,
    "integrations": {},
}

_OWN: dict[str, dict[str, Any]] = {
    "track": {"event": _ID, "properties": _OBJECT},
    "identify": {"traits": _OBJECT},
    "page": {"name": {}, "properties": _OBJECT},
    "screen": {"name": {}, "properties": _OBJECT},
    "group": {"groupId": {}, "traits": _OBJECT},
    "alias": {"previousId": {}},
}


def call_schema(kind: str) -> dict[str, Any]:
    """One call posted to ``/v1/{kind}``."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {**_COMMON, **_OWN[kind]},
        "anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}],
    }
    if kind == "track":
        schema["required"] = ["event"]
    return schema


BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {
            "type": "array",
            "items": {
                "type": "object",
                "description": "A call with its `type` (" + ", ".join(MESSAGE_TYPES) + "); "
                "judged on its own.",
            },
        },
        "context": {**_OBJECT, "description": "Merged under each call's own context."},
        "sentAt": _INSTANT,
    },
}

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
}
_ACCEPTED = {
    "type": "object",
    "required": ["success"],
    "properties": {
        "success": {"type": "boolean", "enum": [True]},
        "refused": {
            "type": "array",
            "description": "Calls of the batch kept aside in the dead-letter table.",
            "items": {
                "type": "object",
                "required": ["index", "messageId", "reason"],
                "properties": {
                    "index": {"type": ["integer", "null"]},
                    "messageId": {"type": ["string", "null"]},
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                },
            },
        },
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


INGEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _json(_ACCEPTED, "Stored (a batch: its good calls; the refused ones are listed)."),
    400: _json(_ERROR, "The body (or the single call) is refused; `field` names where."),
    401: _json(_ERROR, "No or a wrong write key (HTTP Basic, the key as user name)."),
    408: _json(_ERROR, "The body stalled."),
    413: _json(_ERROR, "The body is larger than allowed."),
    415: _json(_ERROR, "A Content-Encoding other than gzip."),
    503: _json(_ERROR, "Stored but not routed (Temporal or the database unreachable): retry."),
}


def request_body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON request body (gzip allowed)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


__all__ = ["BATCH_SCHEMA", "INGEST_RESPONSES", "call_schema", "request_body"]
