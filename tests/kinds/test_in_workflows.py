"""Workflow code may ask the kinds registry: it imports nothing the sandbox refuses, and with
``kinds`` passed through, a kind registered in the worker's process is seen inside."""

from __future__ import annotations

from kinds_workflow import AskKinds
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import kinds
from kinds import ChannelKind, ProfileTrait, TemplateParts, Wording

LINE = ChannelKind(
    name="line",
    address=ProfileTrait("line_user_id"),
    template=TemplateParts(required=frozenset({"body"})),
    wording=Wording(zh="LINE 消息", en="LINE messages"),
)


def runner(*passthrough: str) -> SandboxedWorkflowRunner:
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*passthrough)
    return SandboxedWorkflowRunner(restrictions=restrictions)


async def ask(env, task_queue: str, name: str, *passthrough: str) -> list[str]:
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[AskKinds],
        workflow_runner=runner(*passthrough),
    ):
        return await env.client.execute_workflow(
            AskKinds.run, name, id=f"ask-kinds-{task_queue}", task_queue=task_queue
        )


async def test_the_sandbox_imports_the_registry_with_the_built_in_kinds(time_env, task_queue):
    assert await ask(time_env, task_queue, "push") == ["sms", "email", "push", "push"]


async def test_a_kind_registered_in_the_process_is_seen_when_kinds_pass_through(
    time_env, task_queue
):
    with kinds.registered(LINE):
        answer = await ask(time_env, task_queue, "line", "kinds")

    assert answer == ["sms", "email", "push", "line", "line"]
