"""The import arrows between the rooms hold: no room imports a room above it.

A wrong arrow is how a deterministic workflow ends up importing a database driver, or a provider
module ends up writing to the store. This reads every module's imports (top level, inside
functions, relative, and ``importlib.import_module`` with a literal name) and names the file
and line of any that points up. Each room lists what it must not import; ``workflows/``, whose
code is replayed, also has the short list of what it may import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# room -> the modules it must never import (first component of the dotted name)
FORBIDDEN: dict[str, set[str]] = {
    "workflows": {
        "store",
        "sqlalchemy",
        "activities",
        "channels",
        "triggers",
        "enrollment",
        "audiences",
        "message_templates",
        "api",
        "twilio",
        "sendgrid",
        "firebase_admin",
        "google",
        "httpx",
        "requests",
    },
    "channels": {"store", "activities", "workflows", "triggers", "enrollment", "api"},
    "store": {"activities", "workflows", "triggers", "enrollment", "channels", "audiences", "api"},
    "audiences": {"activities", "workflows", "triggers", "enrollment", "channels", "api"},
    "journeys": {
        "activities",
        "workflows",
        "triggers",
        "enrollment",
        "channels",
        "sqlalchemy",
        "api",
    },
    "message_templates": {"activities", "workflows", "triggers", "enrollment", "channels", "api"},
    "enrollment": {"activities", "triggers", "channels", "api"},
    "activities": {"triggers", "api"},
    "kinds": {"api"},
    # The HTTP layer stores and routes what comes in; it neither sends nor runs journeys.
    "api": {"activities", "workflows", "channels"},
    # The API process mounts the console, never the other way round.
    "console": {"api"},
    "triggers": {"api"},
}
# The composition root (compose.py) builds engines, clients and senders from settings for the
# entry points and the processes' tops (the API server, the console's app, the worker, the
# command line, the simulator and the dev stack); no room below builds its own.
for _room in (
    "workflows", "channels", "store", "audiences", "journeys", "message_templates",
    "enrollment", "activities", "kinds", "triggers",
):  # fmt: skip
    FORBIDDEN[_room] = FORBIDDEN[_room] | {"compose"}
# Nothing below the top imports the entry points.
EVERYWHERE = {"cli", "worker"}
# The top: the tests, the benchmarks, the command line, and the rooms that run the whole engine
# in one process (`lifecycle demo|dev|simulate` build the real worker, as `worker.py` does).
TOP = {"tests", "bench", "cli", "simulate", "devstack"}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, with its line: ``import``, ``from … import`` (relative
    ones resolved against the file's package), and ``importlib.import_module("…")`` or
    ``__import__("…")`` with a literal name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = list(path.relative_to(ROOT).parent.parts)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.lineno, node.module or ""))
                continue
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            if node.module:
                found.append((node.lineno, ".".join([*base, node.module])))
            else:
                found.extend((node.lineno, ".".join([*base, a.name])) for a in node.names)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def crossings() -> list[str]:
    rooms = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - TOP
    wrong = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        room = path.relative_to(ROOT).parts[0]
        if room not in rooms:  # the top rooms may import anything
            continue
        banned = FORBIDDEN.get(room, set()) | EVERYWHERE
        for line, module in imported_modules(path):
            if module.split(".")[0] in banned:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return wrong


def test_every_room_imports_only_the_rooms_below_it():
    assert crossings() == []


def test_only_the_tests_import_the_command_line():
    """``cli/`` is an entry point: the other rooms at the top, and the top-level modules, do
    not import it either (processes are started as ``python -m cli``, not imported)."""
    sources = [*ROOT.glob("*.py")] + [
        path
        for room in sorted(ROOT.iterdir())
        if (room / "__init__.py").exists() and room.name not in {"cli", "tests"}
        for path in room.rglob("*.py")
    ]
    importers = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted(sources)
        for line, module in imported_modules(path)
        if module.split(".")[0] == "cli"
    ]
    assert importers == []


# Workflow code is replayed: besides the standard library it may import only these.
WORKFLOW_MAY_IMPORT = {"workflows", "journeys", "temporalio", "pydantic"}


def test_workflows_import_only_the_standard_library_temporalio_and_the_journey_language():
    outside = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / "workflows").rglob("*.py"))
        for line, module in imported_modules(path)
        if module.split(".")[0] not in WORKFLOW_MAY_IMPORT | sys.stdlib_module_names
    ]
    assert outside == []


def test_channel_kinds_import_only_the_standard_library():
    """Every room asks the channel kinds, the replayed workflows included: they stay data."""
    outside = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / "kinds").rglob("*.py"))
        for line, module in imported_modules(path)
        if module.split(".")[0] not in {"kinds"} | sys.stdlib_module_names
    ]
    assert outside == []


def test_the_check_sees_a_wrong_arrow(tmp_path, monkeypatch):
    room = tmp_path / "channels"
    (room / "sub").mkdir(parents=True)
    (room / "__init__.py").write_text("")
    (room / "bad.py").write_text("import os\n\n\ndef f():\n    from store.db import x\n")
    (room / "sub" / "sneaky.py").write_text(
        "import importlib\n"
        "from ... import store\n"
        "from ...workflows import journey\n"
        "m = importlib.import_module('activities.delivery')\n"
        "from . import fine\n"
    )
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert crossings() == [
        "channels/bad.py:5 imports store.db",
        "channels/sub/sneaky.py:2 imports store",
        "channels/sub/sneaky.py:3 imports workflows",
        "channels/sub/sneaky.py:4 imports activities.delivery",
    ]


def test_every_room_is_installed():
    """A room missing from pyproject's package list works in the tests (they run from the
    checkout) and fails in the installed ``lifecycle`` script."""
    import fnmatch
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = project["tool"]["setuptools"]
    patterns = setuptools["packages"]["find"]["include"]
    rooms = sorted(
        p.parent.name
        for p in ROOT.glob("*/__init__.py")
        if p.parent.name not in {"tests", "bench"}  # not shipped
    )
    missing = [r for r in rooms if not any(fnmatch.fnmatch(r, pat) for pat in patterns)]
    assert missing == []
    modules = sorted(p.stem for p in ROOT.glob("*.py"))
    assert modules == sorted(setuptools["py-modules"])
