"""What the queues hold, read in tests through tasks_app's own API rather than Redis key names."""

from __future__ import annotations

import asyncio

from saq.job import Job

from tasks_app.engine.queue import AtomicRedisQueue
from tasks_app.enqueueing.connections import make_queue


def _read(name: str, read):
    async def go():
        queue = make_queue(name)
        try:
            return await read(queue)
        finally:
            await queue.disconnect()

    return asyncio.run(go())


def stored(key: str, queue: str = "default") -> Job | None:
    """The job with ``key`` as Redis holds it now, or None."""
    return _read(queue, lambda q: q.job(key))


def count(kind: str, queue: str = "default") -> int:
    """``queued``, ``active`` or ``incomplete`` (queued + active + scheduled), as SAQ counts them."""
    return _read(queue, lambda q: q.count(kind))


def listed(key: str, kind: str, queue: str = "default") -> bool:
    """Whether the job is in the ``queued`` or ``active`` list, or pending at all (``incomplete``)."""

    async def read(q: AtomicRedisQueue) -> bool:
        job_id = q.job_id(key)
        if kind == "incomplete":
            return await q.redis.zscore(q.incomplete_key, job_id) is not None
        return job_id.encode() in await q.redis.lrange(q.queued_key if kind == "queued" else q.active_key, 0, -1)

    return _read(queue, read)


def due_at(key: str, queue: str = "default") -> float | None:
    """When a scheduled job is due (epoch seconds); 0 for one queued now; None if not pending."""
    return _read(queue, lambda q: q.redis.zscore(q.incomplete_key, q.job_id(key)))


def job_keys(queue: str = "default") -> list[str]:
    """The keys of every job Redis holds for the queue."""

    async def read(q: AtomicRedisQueue) -> list[str]:
        return [job.key async for job in q.iter_jobs()]

    return _read(queue, read)


def live_workers(queue: str = "default") -> int:
    """Workers whose info has not expired."""

    async def read(q: AtomicRedisQueue) -> int:
        return len((await q.info())["workers"])

    return _read(queue, read)
