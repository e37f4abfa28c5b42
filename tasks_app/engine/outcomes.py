"""How a worker records the outcome of an attempt (``execution.Recorder``): each outcome one owner
compare-and-set (``engine/attempts.py``), a Redis outage waited out, a lost attempt logged once.

A mixin of ``engine/worker.py``'s ``Worker``, whose ``queue``, ``event``, ``taken``, ``outages``,
``max_burst_jobs`` and ``forced`` (``engine/stopping.py``) it uses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from saq.job import Job, Status

from ..exceptions import JobStateConflict, ReplicasNotConfirmed
from . import attempts
from .outages import REDIS_ERRORS, REPLICAS, service_of
from .queue import _text
from .replication import Durability
from .sweeping import HELD

logger = logging.getLogger("tasks_app.worker")


def _wrote(reply: Any) -> bool:
    # An outcome script's reply saying it wrote: {"ok", ...} (finish), {"queued"} or {"aborted", ...}.
    return isinstance(reply, list) and bool(reply) and _text(reply[0]) in ("ok", "queued", "aborted")


class Outcomes:
    """The ``Recorder`` methods of a ``Worker``: each returns the outcome's name."""

    unwritten = 0  # outcomes given up on at a stop (Redis down): ``runworker`` then exits 1

    async def complete(self, job: Job, result: Any, take_next: bool = False) -> str:
        return await self._write(
            job, lambda: self._ended(job, Status.COMPLETE, result=result, take_next=take_next), "complete"
        )

    async def fail(self, job: Job, error: str, timed_out: bool) -> str:
        outcome = await self._write(job, lambda: self._ended(job, Status.FAILED, error=error), "failed")
        return "timeout" if timed_out and outcome == "failed" else outcome

    async def retry(self, job: Job, error: str, timed_out: bool) -> str:
        retrying = "timeout-retrying" if timed_out else "retrying"
        return await self._write(job, lambda: self._retried(job, error, timed_out), retrying)

    async def end_abort(self, job: Job) -> str:
        return await self._write(job, lambda: self._aborted(job), "aborted")

    async def requeue(self, job: Job) -> str:
        # At a stop (its grace period over) nobody waits for Redis any more: see ``_write``'s ``patient``.
        return await self._write(job, lambda: self._requeued(job), "requeued", patient=not self.event.is_set())

    async def _ended(self, job: Job, status: Status, *, result=None, error=None, take_next: bool = False) -> str:
        # While the worker keeps going, the next job comes back with this outcome's write (``take_next``: the
        # slot is free then; a failure's ``on_final_failure`` still runs, so never then); not on a durable
        # queue, whose outcome waits for its replicas (engine/replication.py) on a call of its own.
        take_next = (
            take_next and not self.event.is_set() and self.max_burst_jobs is None and self.queue.durability is None
        )
        taken, asked = None, time.monotonic()  # when the next job was asked for: see Worker._lost_meanwhile
        try:
            taken = await attempts.end_attempt(self.queue, job, status, result=result, error=error, take_next=take_next)
        except JobStateConflict as conflict:
            taken = conflict.taken  # taken in the same round trip: it still needs running
            raise
        finally:
            if taken is not None:
                self.taken.append((taken, asked))
        return "failed" if status == Status.FAILED else status.value

    async def _retried(self, job: Job, error: str, timed_out: bool) -> str:
        status = await attempts.retry_attempt(self.queue, job, error)
        if status == Status.ABORTED:
            return "aborted"
        return "timeout-retrying" if timed_out else "retrying"

    async def _aborted(self, job: Job) -> str:
        await attempts.end_abort(self.queue, job)
        return "aborted"

    async def _requeued(self, job: Job) -> str:
        status = await attempts.requeue_attempt(
            self.queue, job, "re-queued: its worker stopped before the job finished"
        )
        return "requeued" if status == Status.QUEUED else status.value

    async def _write(self, job: Job, change: Callable[[], Awaitable[str]], written: str, patient: bool = True) -> str:
        """Record an outcome of an attempt, waiting out a Redis outage; a refused change means the
        attempt was lost. ``JobNotStorable`` goes to the caller (``Execution``).

        ``written``: the outcome once a try's write is known to be kept. On a durable queue a write whose
        replicas did not confirm it is tried again (a failover may have lost it). If that try is refused,
        the job has moved on (its key enqueued anew, its record expired, or, when a failover lost the
        write, swept and run again elsewhere), and nothing left in Redis says whether the first write
        was kept: the outcome is ``"unknown"``, logged with the outcome that was written.

        A stop request arriving meanwhile cannot cut a write in half: each is one script, sent
        whole once started. If the worker dies before Redis is back, or its stop is forced meanwhile
        (``forced``: the outcome is then "lost", not waited for), the job runs again once its
        heartbeat lapses.
        """
        job.meta.pop(HELD, None)  # written with the outcome: the attempt is over
        unconfirmed: str | None = None  # the outcome a try wrote that no replica confirmed
        said_waiting = False
        while True:
            try:
                outcome = await change()
            except JobStateConflict as conflict:
                self._reached()  # Redis answered (on a durable queue, with the replicas' confirmation)
                stored = conflict.stored.status.value if conflict.stored else "missing"
                if unconfirmed is not None:
                    logger.warning(
                        "Job %s's outcome (%s) was written but no replica confirmed it, and the job has moved "
                        "on since (it is %s now): whether that outcome was kept is unknown.",
                        conflict.key,
                        unconfirmed,
                        stored,
                        extra={"job_key": conflict.key, "outcome": "unknown", "written": unconfirmed},
                    )
                    return "unknown"
                logger.warning(
                    "Job %s's attempt on this worker was taken over (it is %s now); its outcome is dropped.",
                    conflict.key,
                    stored,
                    extra={"job_key": conflict.key, "outcome": "lost"},
                )
                return "lost"
            except REDIS_ERRORS as exc:  # and ReplicasNotConfirmed: a durable queue's outcome waits for them
                if isinstance(exc, ReplicasNotConfirmed) and _wrote(exc.reply):
                    unconfirmed = "aborted" if _text(exc.reply[0]) == "aborted" else written  # an abort won
                wait = self.outages.failed(service_of(exc) or "Redis", exc)
                # The stop was forced, or the write is a stop's re-queue (not ``patient``): nobody waits for
                # Redis any more, and the sweep takes the job over later.
                if self.forced or not patient:
                    logger.error(
                        "Job %s's outcome (%s) was not written: Redis is down and the worker is stopping. The job "
                        "stays active until a worker's sweep finds its heartbeat overdue.",
                        job.key,
                        written,
                        extra={"job_key": job.key, "outcome": "lost", "written": None},
                    )
                    self.unwritten += 1
                    return "lost"
                if self.event.is_set() and not said_waiting:  # a stopping worker: say why it has not exited
                    said_waiting = True
                    logger.warning(
                        "Job %s's outcome (%s) waits for Redis: the worker is stopping and exits once it is "
                        "written. Send the signal again to give up on it (the job then runs again once its "
                        "heartbeat lapses).",
                        job.key,
                        written,
                        extra={"job_key": job.key, "outcome": "waiting", "written": None},
                    )
                await asyncio.sleep(wait)
                continue
            self._reached()
            return outcome

    def _reached(self) -> None:
        # What a write that got its reply has certainly reached: Redis, and on a durable queue the replicas
        # (every outcome's write waits for them there). Not the database, whose outage is another's to end.
        self.outages.succeeded("Redis")
        self._confirmed_again()

    def _confirmed_again(self) -> None:
        # The replicas' confirmation is back once a WAIT of this process confirmed after it was lost: an
        # outbox drain that lost it may succeed later having written nothing (no row left), or a row of a
        # queue whose replicas are not this worker's, so a successful chore alone says nothing of them.
        lost = self.outages.since.get(REPLICAS)
        if lost is not None and Durability.last_confirmed > lost:
            self.outages.succeeded(REPLICAS)
