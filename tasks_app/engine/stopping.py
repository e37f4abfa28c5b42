"""How a ``Worker`` stops (a mixin of ``engine/worker.py``'s, over ``saq.Worker``): it takes no more jobs,
gives running attempts the grace period, then cancels them, and returns only once each has ended.

An attempt ends when its task has: a sync task's thread cannot be stopped, so its attempt, and with it
its job's ACTIVE state, its heartbeat and its outcome, lasts until the thread returns, however many
cancellations come meanwhile (the grace period's end, a forced stop). Its job is never put back on its
queue while the thread runs, so it never runs elsewhere beside itself. SAQ's own stop waits for the
running tasks only until a deadline, then blocks the event loop, and the heartbeat with it, on the
executor's threads (``pool.shutdown(wait=True)``); it runs here once every attempt has ended.

Uses the worker's ``event``, ``attempts``, ``taken``, ``tasks``, ``queue`` and ``_upkeep_tasks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..exceptions import JobStateConflict
from . import attempts, pausing
from .outages import REDIS_ERRORS

logger = logging.getLogger("tasks_app.worker")

# The chores that go on through a stop while attempts run (``Worker._every``): the heartbeat (silent, they
# would be swept and run again elsewhere beside themselves, and their aborts not seen) and the worker's
# info (gone, the dashboard and ``runworker --check`` would see running jobs with no live worker).
THROUGH_STOP = frozenset({"heartbeat", "worker info"})


class Stopping:
    """``stop`` and ``force_stop`` of a ``Worker``."""

    forced = False  # the stop was forced (a second signal): see ``Outcomes._write``

    async def stop(self) -> None:
        """Stop taking jobs; running attempts get the grace period, then go back to the queue (a sync task's
        thread is waited for: its outcome is what it gives). Returns once every attempt has ended."""
        self.event.set()
        beating = [task for task in self._upkeep_tasks if task.get_name().removeprefix("upkeep:") in THROUGH_STOP]
        others = [task for task in self._upkeep_tasks if task not in beating]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        self.tasks.difference_update(self._upkeep_tasks)
        busy = {attempt.process for attempt in self.attempts}
        for task in self.tasks - busy:
            task.cancel()  # idle: waiting for work, holding none
        await self._give_back_taken()
        await self._wind_down()
        # Once more: an outcome write in flight at the signal (a busy worker always has one) brings its slot's
        # next job after the first give-back, and the slot, stopping, does not start it. Left, it stayed
        # ACTIVE until its heartbeat lapsed, and the sweep used up an attempt of it.
        await self._give_back_taken()
        await super().stop()
        for task in beating:  # every attempt has ended or gone back to the queue
            task.cancel()
        await asyncio.gather(*beating, return_exceptions=True)
        with contextlib.suppress(Exception):  # Redis may be gone: then the info simply expires
            await pausing.forget_worker(self.queue, self.id)

    async def _give_back_taken(self) -> None:
        while self.taken:  # taken for this worker, never started: back to the head of the queue
            job, _ = self.taken.pop()
            try:
                await attempts.requeue_attempt(self.queue, job, "re-queued: its worker was stopping")
            except JobStateConflict:
                pass  # no longer this worker's: nothing to give back
            except REDIS_ERRORS:
                logger.error(
                    "Job %s, taken for this worker and not started, was not given back: Redis is down and the "
                    "worker is stopping. It stays active until a worker's sweep finds its heartbeat overdue.",
                    job.key,
                    extra={"job_key": job.key, "outcome": "lost", "written": None},
                )
                self.unwritten += 1  # runworker exits 1 (Outcomes.unwritten)

    async def _wind_down(self) -> None:
        # The grace period, then a cancellation; each attempt decides when it has ended (Execution._cancel).
        running = [task for task in self.tasks if not task.done()]
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=self._shutdown_grace_period_s or 0)
        # A slot whose attempt's outcome is written runs on: what is left is that attempt's outcome callbacks
        # (django.tasks' task_finished receivers) and after_process hooks; a second signal cuts them.
        ended = {attempt.process for attempt in self.attempts if attempt.outcome is not None}
        cut = [task for task in late if task not in ended]
        if len(cut) < len(late):
            logger.warning(
                "%d job(s) whose outcome is written still run their outcome callbacks or after_process hooks at "
                "the end of the %ss grace period: waiting for them. Send the signal again to cut them short.",
                len(late) - len(cut),
                self._shutdown_grace_period_s or 0,
            )
        # The rest are cut: running attempts, and idle slots still settling a blocking take (which say nothing).
        if running_jobs := sum(1 for attempt in self.attempts if attempt.process in cut):
            logger.warning(
                "%d job(s) still running at the end of the %ss grace period: cancelling them; they go back to "
                "their queue (a sync task's thread is waited for: its outcome is what it returns).",
                running_jobs,
                self._shutdown_grace_period_s or 0,
            )
        for task in cut:
            task.cancel()
        if late:
            await asyncio.wait(late)

    def force_stop(self) -> None:
        """Cut the grace period short: running attempts are cancelled and re-queued now (if Redis answers);
        one whose sync task's thread runs on ends when the thread returns."""
        self.event.set()
        self.forced = True
        for attempt in list(self.attempts):
            if attempt.process is not None:
                attempt.process.cancel()
