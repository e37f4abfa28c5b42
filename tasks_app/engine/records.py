"""What code outside the engine does to an ``AtomicRedisQueue``'s jobs beyond SAQ's verbs: enqueue with
its outcome, abort with an audit note, a compare-and-set of one record, and bulk changes.

Each write is one Lua compare-and-set (``engine/lua/records.py``), its times stamped on Redis's clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from saq.job import Job, Status

from . import replication

if TYPE_CHECKING:
    from .queue import AtomicRedisQueue


def _prepare(queue: AtomicRedisQueue, job: Job) -> None:
    if job.queue and job.queue.name != queue.name:
        raise ValueError(f"Job {job.key} belongs to queue {job.queue.name!r}, not {queue.name!r}.")
    job.queue, job.status = queue, Status.QUEUED


async def submit(queue: AtomicRedisQueue, job: Job) -> tuple[Job, str]:
    """Enqueue ``job``: ``(job, "queued")``; ``(job, "deferred")`` when a job of the same key is
    being aborted (the new one is queued the moment that one ends); or ``(pending job, "exists")``
    when a job of that key is queued, scheduled or running, or new work already waits for it.
    The job's ``queued`` (and, for a ``clock.delay``, ``scheduled``) are Redis's times.

    Raises ``ValueError`` for a job of another queue.
    """
    _prepare(queue, job)
    await queue._before_enqueue(job)
    return await queue._submit(job)


async def submit_many(queue: AtomicRedisQueue, jobs: Sequence[Job]) -> list[tuple[Job, str]]:
    """``submit`` for many jobs in one pipeline (one round trip); results in order."""
    for job in jobs:
        _prepare(queue, job)
        await queue._before_enqueue(job)
    script = queue._scripts["enqueue"]
    async with queue.redis.pipeline(transaction=False) as pipe:
        for job in jobs:
            keys, args = queue._enqueue_call(job)
            await script(keys=keys, args=args, client=pipe)
        replies = await replication.execute(queue, pipe)
    return [queue._enqueued(job, reply) for job, reply in zip(jobs, replies, strict=True)]


async def request_abort(
    queue: AtomicRedisQueue, key: str, error: str, annotate: Callable[[Job], None] | None = None
) -> tuple[Job | None, bool]:
    """Abort the job with ``key``: a queued or scheduled one ends ABORTED at once; a running one
    becomes ABORTING and its worker cancels it within a second (or the sweep ends it, if that
    worker is gone). A job that already ended, or is already being aborted, is left as it is.

    ``annotate`` may add to the job (e.g. an audit trail) in the same write. Returns
    ``(job after, True)``, ``(job as it is, False)``, or ``(None, False)`` for no such job.
    """
    return await queue._request_abort(key, error, annotate)


async def compare_and_set(
    queue: AtomicRedisQueue, key: str, change: Callable[[Job], Job | None]
) -> tuple[Job | None, bool]:
    """Apply ``change`` to the stored job with ``key`` atomically.

    ``change`` gets a fresh copy of the stored job and returns it modified, or None for "leave it".
    The write happens only if the stored record is still the one read; otherwise it is read again
    and ``change`` called again. A job made QUEUED is due at its ``scheduled`` if that is still ahead
    on Redis's clock, else at once. Returns ``(job after, True)``, ``(stored job, False)`` when
    ``change`` declined, or ``(None, False)`` when no such job exists.
    Raises ``JobStateConflict`` if the job kept changing under it.
    """
    return await queue._compare_and_set(key, change)


async def records(
    queue: AtomicRedisQueue, keep: Callable[[Job], bool], batch: int = 1000
) -> AsyncIterator[tuple[bytes, Job]]:
    """``(stored record, job)`` of every job of ``queue`` for which ``keep(job)`` is true."""
    cursor = 0
    while True:
        cursor, ids = await queue.redis.scan(cursor=cursor, match=queue.job_id("*"), count=batch)
        if ids:
            for raw in await queue.redis.mget(ids):
                job = queue.deserialize(raw) if raw else None
                if job is not None and keep(job):
                    yield raw, job
        if not cursor:
            return


async def change_many(
    queue: AtomicRedisQueue, found: Iterable[tuple[bytes, Job]], change: Callable[[Job], Job | None]
) -> int:
    """Apply ``change`` to each job found (a fresh copy; None leaves it), each write a record
    compare-and-set against the record found, 500 per round trip. A job that changed since it
    was found is left alone. Returns how many were changed."""
    return await _many(
        queue, found, change, lambda raw, new: ("replace", queue._keys(new), queue._replace_args(raw, new))
    )


async def delete_many(queue: AtomicRedisQueue, found: Iterable[tuple[bytes, Job]]) -> int:
    """Delete each job found, unless it changed since; 500 per round trip. Returns how many went."""
    return await _many(queue, found, lambda job: job, lambda raw, job: ("delete_if_unchanged", [job.id], [raw]))


async def _many(queue: AtomicRedisQueue, found, change, call) -> int:
    done = 0
    chunk: list = []

    async def flush() -> int:
        async with queue.redis.pipeline(transaction=False) as pipe:
            for name, keys, args in chunk:
                await queue._scripts[name](keys=keys, args=args, client=pipe)
            replies = await replication.execute(queue, pipe)
        chunk.clear()
        return sum(1 for reply in replies if reply == 1 or (isinstance(reply, list) and reply[0] in (b"ok", "ok")))

    for raw, _ in found:
        new = change(queue.deserialize(raw))
        if new is None:
            continue
        chunk.append(call(raw, new))
        if len(chunk) >= 500:
            done += await flush()
    if chunk:
        done += await flush()
    return done
