"""When ``runworker --burst`` is done: the burst workers of one process (one per queue) end together, once
none of their queues has a job queued, running (here or on another worker) or due within ``LOOKAHEAD_S``,
and a last look (each worker's ``look``: an unlocked sweep, one outbox drain) found nothing more.

Together, because a job of one queue may queue work on another (a chain's next step, a job it enqueues,
an outbox row): a worker whose own queue is empty waits while its siblings' jobs run, and the last look
drains the outbox for every queue before any of them ends. Redis's view decides (the queues' lists and
schedule), not the workers' own, so that a job taken but not yet started counts as running. A worker that
has ended (``--max-jobs`` reached) no longer holds the others back with the jobs it leaves queued.

The checks are shared: the slots that ask at once (an attempt's end wakes them all) wait for one answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from . import sweeping
from .outages import service_of

logger = logging.getLogger("tasks_app.worker")

# How far ahead a --burst worker looks for scheduled jobs (retries with backoff) before exiting.
LOOKAHEAD_S = 5.0
# How often an idle --burst slot looks again while jobs run elsewhere (an attempt of this process's
# ending wakes it at once).
POLL_S = 0.5


class BurstGroup:
    """One process's burst workers (``Worker``s, which are ``Bursting``), and an event set as any of their
    attempts ends."""

    def __init__(self, workers: Sequence[Bursting]) -> None:
        self.workers = list(workers)
        self._next_end = asyncio.Event()  # set by the next attempt to end, then replaced
        self._shared: dict[str, asyncio.Future] = {}

    async def work_ahead(self) -> bool:
        """Whether a queue of a worker still running has a job queued, running or due within ``LOOKAHEAD_S``
        (never while paused, and not for an index entry whose record is gone: ``sweeping.due_within``)."""
        return await self._once("work ahead", self._work_ahead)

    async def last_look(self) -> None:
        """Each running worker's ``look`` (its unlocked sweep, its chores that may queue jobs)."""
        await self._once("last look", self._last_look)

    def next_end(self) -> asyncio.Event:
        """The event the next attempt of these workers to end sets: taken before asking ``work_ahead``, so
        that an attempt ending meanwhile is not missed."""
        return self._next_end

    def attempt_ended(self) -> None:
        ended, self._next_end = self._next_end, asyncio.Event()
        ended.set()

    @staticmethod
    async def until(ended: asyncio.Event) -> None:
        """Return once ``ended`` (``next_end``) is set, or after ``POLL_S`` (for jobs run elsewhere)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(POLL_S):
                await ended.wait()

    async def _work_ahead(self) -> bool:
        # The queues are asked one after the other: a job that ends on B between the questions to A and to B
        # may have queued its successor on A. Nothing on any queue twice in a row rules that out.
        for _ in range(2 if len(self.workers) > 1 else 1):
            for worker in self._running():
                if await sweeping.due_within(worker.queue, LOOKAHEAD_S):
                    return True
        return False

    async def _last_look(self) -> None:
        for worker in self._running():
            await worker.look()

    def _running(self) -> list[Bursting]:
        return [worker for worker in self.workers if not worker.event.is_set()]

    async def close(self) -> None:
        """Cancel the shared calls still under way (a stop during a last look): none outlives the workers."""
        pending = [future for future in self._shared.values() if not future.done()]
        for future in pending:
            future.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _once(self, name: str, call: Callable[[], Awaitable[Any]]) -> Any:
        # One call in flight for every slot that asks meanwhile; shielded, so that a slot cancelled (a stop)
        # does not cancel it under the others, which hear its error, if any, each.
        running = self._shared.get(name)
        if running is None or running.done():
            running = self._shared[name] = asyncio.ensure_future(call())
        return await asyncio.shield(running)


class Bursting:
    """The --burst side of ``Worker`` (a mixin over ``saq.Worker``)."""

    async def look(self) -> None:
        """Before a --burst worker ends: a sweep (unlocked), which counts the entries whose record is gone
        and re-queues a dead worker's jobs, and one run of each chore that may queue jobs (the outbox's
        drain), whose jobs are then taken. Raises what the sweep raises."""
        await self._sweep(lock=0)
        for chore in self.chores:
            if chore.feeds:
                try:
                    await chore.run_alone()
                except Exception as exc:
                    service = service_of(exc)
                    if service is None:
                        raise
                    self.outages.failed(service, exc)  # logged; what it holds waits for the next worker

    def _check_burst(self, previous_task: asyncio.Task) -> bool:
        # SAQ reads the ended run's result, which raises for a run cancelled (a stop: an ERROR traceback per
        # idle slot) or failed (the slot was never replaced, nor the worker stopped: it hung). Either ends it.
        if previous_task.cancelled():
            self.burst_condition_met = True
        elif (exc := previous_task.exception()) is not None:
            if not getattr(exc, "burst_logged", False):  # a shared check's error reaches every slot: once
                exc.burst_logged = True
                logger.error("A --burst slot failed; the worker ends once its other slots have.", exc_info=exc)
            self.burst_condition_met = True
        return super()._check_burst(previous_task)
