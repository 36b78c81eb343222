"""``BroadcastWorkflow``: one template on one channel to every member of an audience.

Waits for ``send_at`` on a durable timer, then works a page at a time: an activity reads the
next ~1,000 audience members (keyset) and runs each through the journeys' delivery policy,
returning the user ids ready to send; the ready sends go out in batches (``send_batch``, up
to ``batch_size`` each) on the channel's rate-limited bulk task queue, paced by
``rate_per_second`` if given, ``BATCHES_IN_FLIGHT`` at once. Sends held by
quiet hours are stored on their ledger rows and asked again when due. After each page the
run continues as new, so no history grows past a few thousand events.

Signals: ``pause`` (nothing more is handed to the provider until ``resume``), ``resume``,
``cancel`` (stops; what was sent stays sent). Query: ``progress``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.broadcast_contracts import (
        BroadcastCalls,
        BroadcastInput,
        BroadcastPage,
        BroadcastPageInput,
        BroadcastProgress,
        BroadcastRecord,
        SendBatchInput,
        broadcast_delivery,
        bulk_task_queue,
    )
    from workflows.history import ACTIVITY_TIMEOUT, BATCHES, RETRY, SEND_TIMEOUT, WIDER_WINDOW
    from workflows.journey_contracts import DeliverResult, JourneyCalls, channel_task_queue

# A page's policy work: ~1,000 recipients, a few queries each.
PAGE_TIMEOUT = timedelta(minutes=5)
PAGE_HEARTBEAT = timedelta(minutes=1)
# Sends in flight at once, at least: enough to keep every worker busy, few enough that a
# pause takes effect within a window.
WINDOW = 200
# Batches in flight at once, at least: a worker's activity slots (16) each sending one, so
# the sends are not held to ten streams (200 sends in batches of 20), each waiting on its own
# database round trips and provider calls; a pause takes effect within that many batches.
BATCHES_IN_FLIGHT = 16
SENT = ("sent", "delivered", "opened", "clicked")


@workflow.defn(name="BroadcastWorkflow")
class BroadcastWorkflow:
    @workflow.init
    def __init__(self, inp: BroadcastInput) -> None:
        self._inp = inp
        self._progress = inp.progress
        self._paused = inp.paused
        self._cancelled = inp.cancelled
        self._in_flight = 0

    @workflow.signal
    def pause(self) -> None:
        """Hand nothing more to the provider until ``resume``."""
        self._paused = True

    @workflow.signal
    def resume(self) -> None:
        self._paused = False

    @workflow.signal
    def cancel(self) -> None:
        """Stop: no more sends; what was sent stays sent."""
        self._cancelled = True

    @workflow.query
    def progress(self) -> BroadcastProgress:
        progress = self._progress
        if progress.status == "running" and self._paused:
            return replace(progress, status="paused")
        return progress

    @workflow.run
    async def run(self, inp: BroadcastInput) -> BroadcastProgress:
        progress = self._progress
        if progress.status == "scheduled":
            await self._sleep_until(inp.send_at)
            if not self._cancelled:
                progress.status = "running"
                await self._record()
        while not self._cancelled:
            await self._unless_paused()
            if self._cancelled:
                break
            page = await self._next_page()
            if page is None:
                break
            if page.retry_at is not None:  # every send paused by an operator: held
                await self._sleep_until(page.retry_at)
                continue
            self._count(page)
            await self._send_all(page.ready)
            progress.pages += 1
            await self._record()
            more = not progress.audience_done or progress.next_deferred_at is not None
            if more and not self._cancelled:
                # One page per run: every run's history stays a few thousand events.
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    BroadcastInput(
                        broadcast_id=inp.broadcast_id,
                        channel=inp.channel,
                        template=inp.template,
                        send_at=inp.send_at,
                        topic=inp.topic,
                        rate_per_second=inp.rate_per_second,
                        page_size=inp.page_size,
                        batch_size=inp.batch_size,
                        progress=progress,
                        paused=self._paused,
                        cancelled=self._cancelled,
                    )
                )
        progress.status = "cancelled" if self._cancelled else "completed"
        await self._record(finished=True)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return progress

    async def _next_page(self) -> BroadcastPage | None:
        """Held sends that are due first, then the next audience page; None when done."""
        progress = self._progress
        while not self._cancelled:
            due = progress.next_deferred_at
            if due is not None and due <= workflow.now():
                return await self._page(BroadcastCalls.broadcast_deferred)
            if not progress.audience_done:
                return await self._page(BroadcastCalls.broadcast_page)
            if due is None:
                return None
            await self._sleep_until(due)  # every member asked; some wait for morning
            await self._unless_paused()
        return None

    async def _page(
        self, method: Callable[[BroadcastCalls, BroadcastPageInput], BroadcastPage]
    ) -> BroadcastPage:
        inp = self._inp
        page = await workflow.execute_activity_method(
            method,
            BroadcastPageInput(**self._what(), cursor=self._progress.cursor, limit=inp.page_size),
            start_to_close_timeout=PAGE_TIMEOUT,
            heartbeat_timeout=PAGE_HEARTBEAT,
            retry_policy=RETRY,
        )
        if method is BroadcastCalls.broadcast_page and page.retry_at is None:
            self._progress.cursor = page.next_cursor
            self._progress.audience_done = page.last_page
        return page

    def _count(self, page: BroadcastPage) -> None:
        progress = self._progress
        progress.paged += page.paged
        for reason, n in page.skipped.items():
            progress.skipped[reason] = progress.skipped.get(reason, 0) + n
        progress.deferred = page.held
        progress.next_deferred_at = page.next_deferred_at

    async def _send_all(self, user_ids: list[str]) -> None:
        """Hand the ready sends to the channel's bulk queue in batches: at most ``WINDOW``
        sends in flight, at most ``rate_per_second`` started per second, none while paused."""
        if not workflow.patched(BATCHES):
            await self._send_each(user_ids)
            return
        rate = self._inp.rate_per_second
        # A slow broadcast sends in smaller batches, so a second's worth is never a burst.
        size = max(1, min(self._inp.batch_size, int(rate))) if rate else self._inp.batch_size
        window = WINDOW
        if workflow.patched(WIDER_WINDOW):
            window = max(WINDOW, BATCHES_IN_FLIGHT * size)
        room = window - size  # in flight before the next batch may start
        tick_started, in_tick = workflow.now(), 0
        tasks: list[asyncio.Task[None]] = []
        for start in range(0, len(user_ids), size):
            batch = user_ids[start : start + size]
            if rate and in_tick + len(batch) > rate:
                wait = tick_started + timedelta(seconds=in_tick / rate) - workflow.now()
                if wait > timedelta(0):
                    await workflow.sleep(wait)
                tick_started, in_tick = workflow.now(), 0
            await self._unless_paused()
            await workflow.wait_condition(lambda: self._cancelled or self._in_flight <= room)
            if self._cancelled:
                break
            self._in_flight += len(batch)
            in_tick += len(batch)
            tasks.append(asyncio.create_task(self._send(batch)))
        await asyncio.gather(*tasks)

    async def _send(self, user_ids: list[str]) -> None:
        inp, progress = self._inp, self._progress
        try:
            result = await workflow.execute_activity_method(
                BroadcastCalls.send_batch,
                SendBatchInput(**self._what(), user_ids=user_ids),
                task_queue=bulk_task_queue(workflow.info().task_queue, inp.channel),
                # Up to one provider timeout per send; the batch heartbeats every few seconds.
                start_to_close_timeout=SEND_TIMEOUT * len(user_ids),
                heartbeat_timeout=SEND_TIMEOUT,
                retry_policy=RETRY,
            )
        finally:
            self._in_flight -= len(user_ids)
        progress.sent += result.sent
        progress.failed += result.failed
        for reason, n in result.skipped.items():
            progress.skipped[reason] = progress.skipped.get(reason, 0) + n

    async def _send_each(self, user_ids: list[str]) -> None:
        """The page's sends as a run from before batches began them: one ``send_message``
        each on the channel's queue. Once no such run can be in flight, replace the
        ``patched`` check by ``workflow.deprecate_patch(BATCHES)`` and delete this path; drop
        that call a release later (newer runs' histories carry the patch marker)."""
        rate = self._inp.rate_per_second
        per_tick = max(1, int(rate)) if rate else 0
        tick_started = workflow.now()
        tasks: list[asyncio.Task[None]] = []
        for i, user_id in enumerate(user_ids):
            if per_tick and i and i % per_tick == 0:
                assert rate is not None
                wait = tick_started + timedelta(seconds=per_tick / rate) - workflow.now()
                if wait > timedelta(0):
                    await workflow.sleep(wait)
                tick_started = workflow.now()
            await self._unless_paused()
            await workflow.wait_condition(lambda: self._cancelled or self._in_flight < WINDOW)
            if self._cancelled:
                break
            self._in_flight += 1
            tasks.append(asyncio.create_task(self._send_one(user_id)))
        await asyncio.gather(*tasks)

    async def _send_one(self, user_id: str) -> None:
        inp, progress = self._inp, self._progress
        request = broadcast_delivery(**self._what(), user_id=user_id)
        try:
            result = await workflow.execute_activity_method(
                JourneyCalls.send_message,
                request,
                task_queue=channel_task_queue(workflow.info().task_queue, inp.channel),
                start_to_close_timeout=SEND_TIMEOUT,
                retry_policy=RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            if not (isinstance(cause, ApplicationError) and cause.non_retryable):
                raise
            # A permanent refusal, recorded in the ledger by the activity: the page goes on.
            result = DeliverResult(message_id=0, status="failed", reason=cause.type)
        finally:
            self._in_flight -= 1
        if result.status in SENT:
            progress.sent += 1
        elif result.status == "skipped" and result.reason:
            progress.skipped[result.reason] = progress.skipped.get(result.reason, 0) + 1
        else:
            progress.failed += 1

    def _what(self) -> dict[str, Any]:
        """What every page and batch is about: the broadcast, its ledger keys' prefix, the
        message, and now."""
        inp = self._inp
        return {
            "broadcast_id": inp.broadcast_id,
            "key_prefix": workflow.info().first_execution_run_id,
            "channel": inp.channel,
            "template": inp.template,
            "topic": inp.topic,
            "now": workflow.now(),
        }

    async def _sleep_until(self, at: datetime) -> None:
        """Sleep until ``at``, or until cancelled."""
        wait = at - workflow.now()
        if wait <= timedelta(0):
            return
        try:
            await workflow.wait_condition(lambda: self._cancelled, timeout=wait)
        except TimeoutError:
            pass

    async def _unless_paused(self) -> None:
        if not self._paused or self._cancelled:
            return
        self._progress.status = "paused"
        await self._record()
        await workflow.wait_condition(lambda: self._cancelled or not self._paused)
        if not self._cancelled:
            self._progress.status = "running"
            await self._record()

    async def _record(self, *, finished: bool = False) -> None:
        progress = self._progress
        await workflow.execute_activity_method(
            BroadcastCalls.record_broadcast,
            BroadcastRecord(
                broadcast_id=self._inp.broadcast_id,
                status=progress.status,
                recipients=progress.paged,
                now=workflow.now(),
                cursor=progress.cursor,
                finished=finished,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
