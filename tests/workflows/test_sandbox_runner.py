"""The workers' sandbox (``worker.sandbox_runner``) compiles its glue code once and still
refuses what workflow code may not do."""

from __future__ import annotations

from sandbox_probe import ProbeSandbox
from temporalio.worker import Worker

from worker import sandbox_runner
from workflows.sandbox import CompiledOnceRunner, compiled


async def test_the_sandbox_still_refuses_the_wall_clock_and_compiles_its_glue_once(
    time_env, task_queue
):
    runner = sandbox_runner()
    assert isinstance(runner, CompiledOnceRunner)  # the installed temporalio has the hook
    async with Worker(
        time_env.client, task_queue=task_queue, workflows=[ProbeSandbox], workflow_runner=runner
    ):
        first = await time_env.client.execute_workflow(
            ProbeSandbox.run, id=f"probe-1-{task_queue}", task_queue=task_queue
        )
        before = compiled.cache_info()
        answers = [
            await time_env.client.execute_workflow(
                ProbeSandbox.run, id=f"probe-{n}-{task_queue}", task_queue=task_queue
            )
            for n in range(2, 5)
        ]
        after = compiled.cache_info()

    assert first == ["RestrictedWorkflowAccessError", "UTC"]
    assert answers == [first] * 3
    # Three more runs, each a new instance with its activations and payload visits: all of
    # their glue was compiled for the first run already.
    assert after.misses == before.misses
    assert after.hits >= before.hits + 3 * 3
