"""Pausing a queue and reading its depth: what the dashboard, the commands and the metrics call.

A pause is one record (``saq:<queue>:paused``) that the take scripts check: the queue's workers finish
what they run and take nothing new; enqueueing goes on. Its time is Redis's (``engine/lua/records.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .queue import AtomicRedisQueue


@dataclass(frozen=True)
class Depth:
    """What ``depth()`` reads: jobs queued, running and scheduled for later (retries waiting for their
    delay included), the pause record (None when running) and live workers."""

    queued: int
    active: int
    scheduled: int
    paused: dict | None
    workers: int


async def pause(queue: AtomicRedisQueue, by: str) -> tuple[dict, bool]:
    """Pause ``queue``. Returns who paused it and when (``{"by": ..., "at": epoch seconds}``), and
    whether this call did: if it was paused already, it stays paused by whoever did it first."""
    done, record = await queue._script("pause", [queue.paused_key], [by])
    return json.loads(record), bool(done)


async def resume(queue: AtomicRedisQueue) -> bool:
    """Resume a paused queue; False if it was not paused."""
    return bool(await queue.redis.delete(queue.paused_key))


async def paused(queue: AtomicRedisQueue) -> dict | None:
    """``{"by": who, "at": epoch seconds}`` while ``queue`` is paused, else None."""
    raw = await queue.redis.get(queue.paused_key)
    return json.loads(raw) if raw else None


async def depth(queue: AtomicRedisQueue) -> Depth:
    """The queue's counts, pause record and number of live workers, in one round trip."""
    keys = [queue.queued_key, queue.active_key, queue.incomplete_key, queue.paused_key, queue.stats_key]
    queued, active, incomplete, record, workers = await queue._script("depth", keys, [])
    return Depth(
        queued=queued,
        active=active,
        scheduled=max(0, incomplete - queued - active),
        paused=json.loads(record) if record else None,
        workers=workers,
    )


async def forget_worker(queue: AtomicRedisQueue, worker_id: str) -> None:
    """Remove a stopped worker's info now, instead of letting it expire."""
    key = queue.namespace(f"worker_info:{worker_id}")
    async with queue.redis.pipeline(transaction=True) as pipe:
        await pipe.delete(key).zrem(queue.stats_key, key).execute()
