"""A worker's side of an attempt, on an ``AtomicRedisQueue``: the transitions SAQ's Queue has no verb
for (take-and-activate, the heartbeat, finish-and-take, a clean stop's re-queue), each one Lua
compare-and-set (``engine/lua/attempts.py``), its times stamped on Redis's clock. Private to
``engine/``: the queue's public surface is SAQ's.

========================  ==========================================  ====================
function                  transition                                  SAQ's nearest verb
========================  ==========================================  ====================
``take``                  QUEUED -> ACTIVE for a worker, attempts + 1  ``dequeue``
``touch``                 heartbeat of a worker's running attempts     (``update``)
``end_attempt``           the attempt's outcome (+ the next job)       ``finish``
``retry_attempt``         ACTIVE -> QUEUED after the retry delay        ``retry``
``requeue_attempt``       ACTIVE -> QUEUED at the head, attempt undone  (none)
``end_abort``             ABORTING -> ABORTED                          ``finish_abort``
``hold``                  marks a cancelled attempt still running       (``update``)
========================  ==========================================  ====================
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable

from saq.job import Job, Status

from ..exceptions import JobStateConflict
from . import records
from .clock import redis_now_ms
from .queue import HEAD, AtomicRedisQueue, _text
from .sweeping import HELD, held_mark


async def take(queue: AtomicRedisQueue, worker_id: str, wait: float = 0.0, idle: bool = True) -> Job | None:
    """The next queued job, already marked ACTIVE for ``worker_id`` (attempts + 1), or None.

    Waits up to ``wait`` seconds for one when nothing is queued; when jobs wait for their limits
    (``engine/limits.py``), only until the first of them may start, and when a job is scheduled, only
    until it is due. ``idle=False`` (a --burst worker, which then ends or looks again): no wait when
    nothing is queued, nor for a job that may not start within ``wait``.
    """
    reply = await queue._script(
        "take", [queue.queued_key, queue.active_key, queue.paused_key, queue.incomplete_key], [worker_id]
    )
    if wait > 0 and ((not reply and idle) or _waits(reply)):
        if reply:
            if not idle and int(reply[1]) / 1000 > wait:
                return None
            wait = min(wait, int(reply[1]) / 1000)
        job_id = await queue.redis.blmove(queue.queued_key, queue.active_key, blocking_timeout(wait), "LEFT", "RIGHT")
        if job_id is None:
            return None
        reply = await queue._script(
            "activate",
            [queue.active_key, job_id, queue.queued_key, queue.paused_key, queue.incomplete_key],
            [worker_id],
        )
    if reply == b"paused":
        if idle:
            await asyncio.sleep(wait)  # paused: take nothing, and do not spin
        return None
    return await _taken(queue, reply, worker_id)


def blocking_timeout(seconds: float) -> float:
    """``seconds`` as a timeout a blocking command never reads as 0, "block for ever": Redis truncates
    ``seconds * 1000`` to whole milliseconds, so anything under 1 ms (a worker told how long until a rate
    limit frees a start) would never wake. Redis wakes blocked clients on its own timer (100 ms at
    ``hz`` 10), so a short wait may last that long."""
    return max(seconds, 0.001) + 0.0005


def _waits(reply: list | bytes) -> bool:
    # {'wait', ms}: nothing could start, a job parked by its limits may in ms.
    return isinstance(reply, list) and reply[0] == b"wait"


async def _taken(queue: AtomicRedisQueue, reply: list | None, worker_id: str) -> Job | None:
    if not reply or reply == b"paused" or _waits(reply):
        return None
    _, raw, activated = reply
    job = queue.deserialize(raw)
    if not int(activated):
        # Written by something other than this class (no header): activate it by record CAS.
        job.status, job.worker_id = Status.ACTIVE, worker_id
        job.attempts += 1
        job.started = job.touched = await redis_now_ms(queue.redis)
        if await queue._replace(raw, job) is None:
            return None
    return job


async def touch(queue: AtomicRedisQueue, worker_id: str, attempts: Iterable[tuple[Job, bool]]) -> list[str]:
    """Heartbeat ``worker_id``'s running attempts (those flagged True) and read their status.

    Returns, per attempt and in order, "active" or "aborting" while this worker still holds it,
    else "lost" (swept, finished or taken over elsewhere). One round trip for all of them.
    """
    attempts = list(attempts)
    if not attempts:
        return []
    args: list = [worker_id]
    for job, due in attempts:
        args += [job.attempts, 1 if due else 0]
    reply = await queue._script("touch", [job.id for job, _ in attempts], args)
    return [_text(state) for state in reply]


async def end_attempt(
    queue: AtomicRedisQueue,
    job: Job,
    status: Status,
    *,
    result=None,
    error: str | None = None,
    take_next: bool = False,
) -> Job | None:
    """Record how ``job``'s attempt ended (COMPLETE, FAILED or ABORTED); with ``take_next``, also
    take the next job for the same worker, in the same round trip, and return it (or None).

    Raises ``JobStateConflict`` if the attempt is no longer this job's (the sweep re-ran it,
    or it was aborted and ended elsewhere); nothing is written then (a job taken with it is
    returned on the exception, as ``taken``).
    """
    job.status, job.result, job.error = status, result, error  # ``completed``: stamped by the write
    if status == Status.COMPLETE:
        job.progress = 1.0
    taken = None
    if take_next:
        reply, next_reply = await queue._finish_cas(job, status, "finish_and_take", job.started)
        taken = await _taken(queue, next_reply, job.worker_id)
    else:
        reply = await queue._finish_cas(job, status, started=job.started)
    if _text(reply[0]) != "ok":
        stored = queue._stored(reply)
        if queue._same_attempt(stored, job) and stored.status == status:
            job.completed = stored.completed  # written already (the reply to an earlier try was lost)
            queue._count(status)
            return taken
        conflict = JobStateConflict(job.key, Status(status).value, stored)
        conflict.taken = taken
        raise conflict
    job.completed = int(reply[1])
    queue._count(status)
    return taken


async def retry_attempt(queue: AtomicRedisQueue, job: Job, error: str | None) -> Status:
    """Put ``job`` back on the queue for its next attempt, after its retry delay.

    Returns QUEUED, or ABORTED if it was being aborted (the abort wins). Raises
    ``JobStateConflict`` if the attempt is no longer this job's.
    """
    # On a copy, so that if it cannot be written (JobNotStorable) the attempt is still the worker's.
    back = dataclasses.replace(job)
    queue._reset_for_retry(back, error)
    status = await queue._requeue_after_delay(back, job.worker_id)
    job.replace(back)
    queue.retried += status == Status.QUEUED
    return status


async def requeue_attempt(queue: AtomicRedisQueue, job: Job, reason: str) -> Status:
    """Give back an attempt its worker could not finish (a clean stop): at the head of the queue,
    without using up an attempt. Returns QUEUED, or ABORTED if it was being aborted."""
    back = dataclasses.replace(job)
    queue._reset_for_retry(back, reason)
    back.attempts = max(0, job.attempts - 1)
    status = await queue._requeue(back, HEAD, 0, owner=job.worker_id, expected_attempts=job.attempts)
    job.replace(back)
    return status


async def end_abort(queue: AtomicRedisQueue, job: Job, count: bool = True) -> Job:
    """ABORTING -> ABORTED for the attempt its worker has just cancelled; returns the stored job."""
    return await queue._end_abort(job, count)


async def hold(queue: AtomicRedisQueue, worker_id: str, job: Job) -> None:
    """Mark ``job``'s attempt (``worker_id``'s, cancelled, its sync task's thread still running) as held,
    in ``meta["held"]``, so that the sweep's timeout rule leaves it to the worker heartbeating it
    (``records.change_attempt``: what an abort wrote meanwhile is kept)."""
    mark = held_mark(worker_id, job.attempts)
    now_ms = await redis_now_ms(queue.redis)

    def held(stored: Job) -> None:
        stored.meta[HELD] = job.meta[HELD] = mark
        stored.touched = now_ms  # touched now: a held job is judged by its touches (sweeping.HELD_SILENCE_S)

    await records.change_attempt(queue, worker_id, job, held)
