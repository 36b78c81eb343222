"""The activities the workflows call are the ones the worker registers: each declared in
``workflows/`` (``JourneyCalls``, ``SweepCalls``, ``BroadcastCalls``) is registered by
``worker.build_workers`` under the same name, taking and returning the same types; and the
workflows call activities only through those declarations, never by a name string."""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest.mock import patch

from conftest import Database
from temporalio.activity import _Definition

import worker
from config import Settings
from workflows.broadcast_contracts import BroadcastCalls
from workflows.journey_contracts import JourneyCalls
from workflows.sweep_contracts import SweepCalls

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
DECLARATIONS = (JourneyCalls, SweepCalls, BroadcastCalls)


def declared() -> list[_Definition]:
    found = []
    for calls in DECLARATIONS:
        for name in vars(calls):
            definition = _Definition.from_callable(getattr(calls, name))
            if definition is not None:
                found.append(definition)
    return found


async def registered(sqlite_db: Database) -> dict[str, list[_Definition]]:
    """Every activity ``build_workers`` registers, by name, on any of its workers (built
    on a running loop, as the worker process builds them)."""
    workers: list[dict[str, Any]] = []

    def record(client: Any, **options: Any) -> dict[str, Any]:
        workers.append(options)
        return options

    settings = Settings(environment="development")
    with ThreadPoolExecutor(max_workers=1) as executor, patch.object(worker, "Worker", record):
        worker.build_workers(object(), settings, sqlite_db.factory, executor=executor)  # type: ignore[arg-type]
    by_name: dict[str, list[_Definition]] = {}
    for options in workers:
        for fn in options.get("activities", []):
            definition = _Definition.must_from_callable(fn)
            assert definition.name is not None
            by_name.setdefault(definition.name, []).append(definition)
    return by_name


def test_the_declarations_name_every_activity_once():
    names = [d.name for d in declared()]
    assert len(names) == len(set(names)) >= 11


async def test_every_declared_activity_is_registered_with_its_types(sqlite_db: Database):
    worker_has = await registered(sqlite_db)
    wrong = []
    for definition in declared():
        implementations = worker_has.get(definition.name or "")
        if not implementations:
            wrong.append(f"the worker registers no activity named {definition.name!r}")
        for implementation in implementations or []:
            types = (implementation.arg_types, implementation.ret_type)
            if types != (definition.arg_types, definition.ret_type):
                wrong.append(f"{definition.name}: declared {definition.fn}, registered {types}")
    assert wrong == []


CALLS = {
    "execute_activity",
    "start_activity",
    "execute_local_activity",
    "start_local_activity",
    "execute_activity_method",
    "start_activity_method",
    "execute_local_activity_method",
    "start_local_activity_method",
}


def test_workflows_call_activities_through_their_declarations():
    by_string = []
    for path in sorted(WORKFLOWS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in CALLS
            ):
                first = node.args[0] if node.args else None
                if node.func.attr.endswith("_method") is False or isinstance(first, ast.Constant):
                    by_string.append(f"{path.name}:{node.lineno} {node.func.attr}")
                if any(k.arg == "result_type" for k in node.keywords):
                    by_string.append(f"{path.name}:{node.lineno} result_type")
    assert by_string == []
