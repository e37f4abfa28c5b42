"""Exercise a queue's Redis with the commands every queue user needs, harmlessly (``runworker --check``
and start-up): an ACL user that lacks one hears which (``NoPermissionError``, NOPERM)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from . import pausing

if TYPE_CHECKING:
    from .queue import AtomicRedisQueue


async def exercise(queue: AtomicRedisQueue) -> None:
    """Reads of the queue's keys, loading and running a script, a blocking take (from a list of one entry,
    so it returns at once), and ``WAIT`` when the queue asks for replicas. Raises redis-py's errors as they
    come."""
    await pausing.depth(queue)
    await queue.redis.script_load(queue._scripts["enqueue"].script)
    probe = await queue.redis.script_load("return redis.call('EXISTS', KEYS[1])")
    await queue.redis.evalsha(probe, 1, queue.namespace("probe"))
    # On a list that holds an entry, BLMOVE returns at once (moving it onto itself), and an ACL refuses it all
    # the same. On an empty one it waited out its timeout, which Redis sees only at its next tick (hz 10: up to
    # 100 ms, 67-101 ms measured) on an idle server: every worker's start paid it. A key of this call's own,
    # so that workers starting together (--workers N) never empty each other's.
    key = queue.namespace(f"probe:{uuid.uuid4().hex}")
    await queue.redis.rpush(key, "probe")
    try:
        await queue.redis.blmove(key, key, 0.01, "LEFT", "RIGHT")
    finally:
        await queue.redis.delete(key)
    if queue.durability is not None:
        await queue.redis.execute_command("WAIT", 0, 1)
