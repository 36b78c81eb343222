"""A workflow that tries what the sandbox refuses, for the sandbox runner's tests (imported by
the sandbox, so it imports only what workflow code may)."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow


@workflow.defn
class ProbeSandbox:
    @workflow.run
    async def run(self) -> list[str]:
        """What happened to a read of the wall clock, then the workflow's own clock's zone."""
        try:
            datetime.now()
        except Exception as exc:  # noqa: BLE001 - the refusal's kind is the answer
            refused = type(exc).__name__
        else:
            refused = "allowed"
        return [refused, str(workflow.now().tzinfo)]
