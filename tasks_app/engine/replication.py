"""Acknowledged means durable, when asked: Redis's ``WAIT`` after each write that enqueues or ends a job.

A queue with ``wait_replicas=N`` (``conf.QueueConfig``) gets a ``Durability``; its writes that put a job
on the queue or end it (``DURABLE_SCRIPTS``: enqueue, a retry's or the sweep's re-queue, a compare-and-set
that puts a job back on the queue, a worker's outcome, and bulk pipelines) return only once
``WAIT N timeout`` has confirmed N replicas, else raise ``ReplicasNotConfirmed``. A worker retries its
outcome until it is confirmed: an outcome a failover lost would run the job a second time, and the
ledger of the fault harness (``bench/distributed``) would hold two accepted terminal writes for it.

``WAIT`` counts the writes of the connection it is sent on, so it goes in the same non-transactional
pipeline as the script, which redis-py sends on one connection of the pool. Not on the queue's
``AutoPipeline`` connection (``engine/pipelining.py``): ``WAIT`` blocks its connection up to the
timeout, and every other call pipelined there (a worker's finishes and takes) would wait behind it.
A bulk enqueue pays one ``WAIT`` for its whole pipeline.

Without it, Redis acknowledges a write once the primary has it in memory; replication is asynchronous,
so a failover can lose the last writes acknowledged. With it, a confirmed write is on N replicas too
(each in memory: durable across a restart only with AOF on, ``appendonly yes``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from redis.exceptions import NoScriptError

from ..exceptions import ReplicasNotConfirmed

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline

# ``queue`` below is an ``AtomicRedisQueue`` (not imported: queue.py imports this module).

# The scripts that write a job onto the queue (a new job, a retry, a re-queue, a rewrite of a job) or
# record how its attempt ended (``finish``, ``end_abort``). ``finish_and_take`` is not one: a durable
# queue's worker finishes and takes in two calls (``engine/worker.py``).
DURABLE_SCRIPTS = frozenset({"enqueue", "enqueue_chain", "requeue", "replace", "relist", "finish", "end_abort"})


@dataclass
class Durability:
    """``replicas`` that must confirm each enqueueing write within ``timeout_ms``; ``setting`` names where
    that is set (for messages). ``acknowledged`` and ``at`` (epoch s) record this process's last WAIT."""

    replicas: int
    timeout_ms: int
    setting: str
    acknowledged: int | None = None
    at: float | None = None
    # When a WAIT of any queue of this process last confirmed (``time.monotonic()``): a worker whose
    # outbox drain (any queue's) lost the confirmation hears from it that it is back (``engine/worker.py``).
    last_confirmed: ClassVar[float] = 0.0

    def confirm(self, acknowledged: Any) -> None:
        """Record ``WAIT``'s reply; raises ``ReplicasNotConfirmed`` when it is short of ``replicas``."""
        if isinstance(acknowledged, Exception):
            raise acknowledged  # WAIT itself refused (e.g. an ACL user without it): the caller hears why
        self.acknowledged, self.at = int(acknowledged), time.time()
        if self.acknowledged < self.replicas:
            raise ReplicasNotConfirmed(self.acknowledged, self.replicas, self.timeout_ms, self.setting)
        Durability.last_confirmed = time.monotonic()

    async def script(self, queue: Any, name: str, keys: list, args: list) -> Any:
        """Run the queue's script ``name`` and ``WAIT`` on one connection; the script's reply, once confirmed.
        A script's own error is raised as it is (nothing was written, nothing to confirm).

        A probe write sits between them. ``WAIT`` confirms the connection's own last write, and a
        compare-and-set that refuses writes nothing: its reply ("written already", by an earlier try
        whose confirmation a failover cut off) describes a state that reached this primary by another
        connection or by replication. The probe makes ``WAIT`` confirm all of it."""
        script = queue._scripts[name]
        for _ in range(2):
            async with queue.redis.pipeline(transaction=False) as pipe:
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                for command in confirmation(queue, self):
                    pipe.execute_command(*command)
                reply, _, acknowledged = await pipe.execute(raise_on_error=False)
            if isinstance(reply, NoScriptError):  # Redis lost its script cache (a restart, a new primary)
                await queue.redis.script_load(script.script)
                continue
            if isinstance(reply, Exception):
                raise reply
            try:
                self.confirm(acknowledged)
            except ReplicasNotConfirmed as short:
                short.reply = reply  # what was written: a worker's next try tells its own write from a newer one
                raise
            return reply
        raise NoScriptError(f"Redis keeps losing the script {name!r}")


async def execute(queue: Any, pipe: Pipeline) -> list:
    """``pipe.execute()``, with a probe write and one ``WAIT`` at its end when ``queue`` asks for replicas
    (then confirmed). The probe, as in ``Durability.script``: an enqueue that answers "exists" writes
    nothing, and the job it reports may have reached the primary by another, unconfirmed, connection."""
    durability: Durability | None = queue.durability
    if durability is None:
        return await pipe.execute()
    for command in confirmation(queue, durability):
        pipe.execute_command(*command)
    replies = await pipe.execute()
    durability.confirm(replies[-1])
    return replies[:-2]


def confirmation(queue: Any, durability: Durability) -> list[tuple]:
    """The two commands that end every durable write, for any client to send after it on the same
    connection: a probe write (a key of the queue's own, expiring in a minute), so that ``WAIT`` confirms
    all the primary holds and not only this connection's writes, then ``WAIT``. Their replies: ``OK``, and
    how many replicas confirmed (for ``Durability.confirm``)."""
    return [
        ("SET", queue.namespace("durability_probe"), "1", "PX", 60_000),
        ("WAIT", durability.replicas, durability.timeout_ms),
    ]


async def confirm(queue: Any) -> None:
    """Confirm on ``queue.durability``'s replicas everything the primary holds now: a probe write (a key
    of the queue's own, expiring in a minute) and ``WAIT`` on one connection. Replication is one ordered
    stream, so replicas that have the probe have every earlier write (a job an unconfirmed enqueue left).
    Raises ``ReplicasNotConfirmed`` when they fall short."""
    durability: Durability = queue.durability
    async with queue.redis.pipeline(transaction=False) as pipe:
        for command in confirmation(queue, durability):
            pipe.execute_command(*command)
        _, acknowledged = await pipe.execute()
    durability.confirm(acknowledged)
