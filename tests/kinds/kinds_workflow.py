"""A workflow that asks the kinds registry, for the sandbox tests (imported by the sandbox,
so it imports only what workflow code may)."""

from __future__ import annotations

from temporalio import workflow

import kinds


@workflow.defn
class AskKinds:
    @workflow.run
    async def run(self, name: str) -> list[str]:
        """The kinds' names, then the queue suffix of the kind called ``name``."""
        return [*kinds.names(), kinds.kind(name).queue_suffix]
