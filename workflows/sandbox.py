"""The workflow sandbox the workers run: temporalio's, with its glue code compiled once.

temporalio's sandbox reaches the workflow by ``exec`` of small source strings: one to import
the workflow class for each new run, one per activation, and one each time a payload sequence
of an activation or its completion is visited (six visits per activation in temporalio 1.35,
to find the serialization and storage context). ``exec`` of a string compiles it again every
time, about 17 µs each; profiled under new users, that compiling was 7 % of the journey
worker's CPU. The strings are few and fixed, so each is compiled once here and the code
object executed in the same globals: what runs in the sandbox, and its restrictions, are
unchanged.

The hook is one private method (``_Instance._run_code``). Where the installed temporalio has
no such method, :func:`sandbox_runner` gives the stock runner and the code is compiled per
call as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from functools import lru_cache
from types import CodeType
from typing import Any

from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

try:
    from temporalio.worker.workflow_sandbox._runner import _Instance
except ImportError:  # a temporalio that moved it: the stock runner
    _Instance = None  # type: ignore[assignment,misc]


@lru_cache(maxsize=64)
def compiled(source: str) -> CodeType:
    """``source`` compiled as ``exec`` compiles a string (same file name in tracebacks)."""
    return compile(source, "<string>", "exec")


def _hookable() -> bool:
    run_code = getattr(_Instance, "_run_code", None)
    if run_code is None:
        return False
    return list(inspect.signature(run_code).parameters) == ["self", "code", "extra_globals"]


if _Instance is not None and _hookable():

    class _CompiledOnce(_Instance):  # type: ignore[misc,valid-type]
        def _run_code(self, code: str, **extra_globals: Any) -> None:
            super()._run_code(compiled(code), **extra_globals)  # type: ignore[arg-type]

    class CompiledOnceRunner(SandboxedWorkflowRunner):
        """:class:`SandboxedWorkflowRunner` whose instances compile each glue string once."""

        def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
            return _CompiledOnce(det, self.runner_class, self.restrictions)

    _RUNNER: type[SandboxedWorkflowRunner] = CompiledOnceRunner
else:
    _RUNNER = SandboxedWorkflowRunner


def sandbox_runner(passthrough: Iterable[str]) -> SandboxedWorkflowRunner:
    """The sandbox with the ``passthrough`` modules imported once, outside it."""
    return _RUNNER(restrictions=SandboxRestrictions.default.with_passthrough_modules(*passthrough))
