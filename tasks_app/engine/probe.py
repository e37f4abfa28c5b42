"""Exercise a queue's Redis with the commands every queue user needs, harmlessly (``runworker --check``
and start-up): an ACL user that lacks one hears which (``NoPermissionError``, NOPERM)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import pausing

if TYPE_CHECKING:
    from .queue import AtomicRedisQueue


async def exercise(queue: AtomicRedisQueue) -> None:
    """Reads of the queue's keys, loading and running a script, a blocking take from an empty list (in a
    transaction, so it returns at once), and ``WAIT`` when the queue asks for replicas. Raises redis-py's
    errors as they come."""
    await pausing.depth(queue)
    await queue.redis.script_load(queue._scripts["enqueue"].script)
    probe = await queue.redis.script_load("return redis.call('EXISTS', KEYS[1])")
    await queue.redis.evalsha(probe, 1, queue.namespace("probe"))
    # Inside MULTI a blocking command never blocks, and is refused by an ACL all the same. Alone, on an empty
    # list, Redis ends its wait only at its next tick (hz 10: up to 100 ms; 67-101 ms measured), which every
    # worker's start paid.
    async with queue.redis.pipeline(transaction=True) as transaction:
        transaction.blmove(queue.namespace("probe"), queue.namespace("probe"), 0.01, "LEFT", "RIGHT")
        await transaction.execute()
    if queue.durability is not None:
        await queue.redis.execute_command("WAIT", 0, 1)
