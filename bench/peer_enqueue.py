"""The ``enqueue`` workload of ``bench/peers.py``: no-op jobs enqueued into an empty Redis from the
benchmark's own process, by tasks_app and its peers, each the way its users call it.

- one at a time from sync code, a plain loop as a view or a signal handler would run it: tasks_app's
  ``enqueue``, huey's task call, dramatiq's ``actor.send`` and rq's ``Queue.enqueue``;
- one at a time from async code: tasks_app's ``aenqueue``, awaited in turn (``--enqueue-one-jobs``);
- 20 in flight: tasks_app's ``aenqueue`` from 20 coroutines on one loop; huey and dramatiq (which have
  no async API) from 20 threads;
- in bulk: tasks_app's ``enqueue_many`` and ``aenqueue_many`` against rq's ``Queue.enqueue_many`` (with
  ``Queue.prepare_data``, in one pipeline, as rq's documentation does it) for each of ``--enqueue-jobs``.

Every way is timed from its first call to its last reply, and checked to have queued every job.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.peer_runs import Bench

IN_FLIGHT = 20


@dataclass(frozen=True)
class Way:
    """A way to enqueue: its name, a call that enqueues the jobs, and how many jobs are queued now."""

    name: str
    enqueue: Callable[[], object]
    queued: Callable[[], int]


def in_threads(count: int, call: Callable[[], object], threads: int = IN_FLIGHT) -> None:
    """``count`` calls of ``call`` from ``threads`` threads at once (the remainder on the first ones)."""
    shares = [count // threads + (i < count % threads) for i in range(threads)]

    def run(share: int) -> None:
        for _ in range(share):
            call()

    workers = [threading.Thread(target=run, args=(share,)) for share in shares]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


class Enqueueing:
    """Enqueue no-op jobs with tasks_app and its peers, into the benchmark's Redis, timed in this process."""

    def __init__(self, bench: Bench) -> None:
        import rq

        from bench.peer_jobs import dramatiq_app, huey_app

        self.bench = bench
        self.rq_queue = rq.Queue("peers", connection=bench.client)
        self.huey = huey_app
        self.dramatiq = dramatiq_app
        for way in self.bulk(10) + self.one_at_a_time(10) + self.in_flight(10):  # connections opened, scripts loaded
            self.measure(way, 10)

    def bulk(self, count: int) -> list[Way]:
        from rq import Queue

        from bench.peer_jobs.threaded_jobs import peer_noop
        from tasks_app import aenqueue_many, enqueue_many

        def rq_enqueue_many() -> None:
            with self.rq_queue.connection.pipeline() as pipe:  # as rq's documentation does it
                self.rq_queue.enqueue_many(
                    [Queue.prepare_data(peer_noop, kwargs={"mark": 0}) for _ in range(count)], pipeline=pipe
                )
                pipe.execute()

        def calls() -> list[dict]:
            return [{"mark": 0} for _ in range(count)]

        loop = self.bench.loop
        return [
            Way("tasks_app enqueue_many", lambda: enqueue_many("peer_noop", calls()), self._saq_queued),
            Way("tasks_app aenqueue_many", lambda: loop.run_until_complete(aenqueue_many("peer_noop", calls())),
                self._saq_queued),
            Way("rq enqueue_many", rq_enqueue_many, lambda: self.rq_queue.count),
        ]  # fmt: skip

    def one_at_a_time(self, count: int) -> list[Way]:
        from bench.peer_jobs.threaded_jobs import peer_noop
        from tasks_app import aenqueue, enqueue

        async def tasks_app_one_by_one() -> None:
            for _ in range(count):
                await aenqueue("peer_noop", mark=0)

        def loop(call: Callable[[], object]) -> Callable[[], None]:
            def run() -> None:
                for _ in range(count):
                    call()

            return run

        return [
            Way("tasks_app enqueue (sync, one at a time)", loop(lambda: enqueue("peer_noop", mark=0)),
                self._saq_queued),
            Way("huey (sync, one at a time)", loop(lambda: self.huey.peer_noop(mark=0)), self._huey_queued),
            Way("dramatiq send (sync, one at a time)", loop(lambda: self.dramatiq.peer_noop.send(mark=0)),
                self._dramatiq_queued),
            Way("rq enqueue (one at a time)", loop(lambda: self.rq_queue.enqueue(peer_noop, mark=0)),
                lambda: self.rq_queue.count),
            Way("tasks_app aenqueue (one at a time)",
                lambda: self.bench.loop.run_until_complete(tasks_app_one_by_one()), self._saq_queued),
        ]  # fmt: skip

    def in_flight(self, count: int) -> list[Way]:
        from tasks_app import aenqueue

        async def tasks_app_in_flight() -> None:
            left = count

            async def one_slot() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    await aenqueue("peer_noop", mark=0)

            await asyncio.gather(*(one_slot() for _ in range(IN_FLIGHT)))

        return [
            Way(f"tasks_app aenqueue ({IN_FLIGHT} in flight)",
                lambda: self.bench.loop.run_until_complete(tasks_app_in_flight()), self._saq_queued),
            Way(f"huey ({IN_FLIGHT} threads)", lambda: in_threads(count, lambda: self.huey.peer_noop(mark=0)),
                self._huey_queued),
            Way(f"dramatiq send ({IN_FLIGHT} threads)",
                lambda: in_threads(count, lambda: self.dramatiq.peer_noop.send(mark=0)), self._dramatiq_queued),
        ]  # fmt: skip

    def _saq_queued(self) -> int:
        return self.bench.client.llen("saq:default:queued")

    def _huey_queued(self) -> int:
        return self.huey.huey.pending_count()

    def _dramatiq_queued(self) -> int:
        return self.bench.client.hlen(f"dramatiq:{self.dramatiq.peer_noop.queue_name}.msgs")

    def measure(self, way: Way, count: int) -> float:
        """jobs/s of ``way`` enqueueing ``count`` jobs into an empty Redis; checks they are all queued."""
        self.bench.flush()
        started = time.perf_counter()
        way.enqueue()
        elapsed = time.perf_counter() - started
        if way.queued() != count:
            raise RuntimeError(f"{way.name}: {way.queued()} jobs queued for {count}")
        self.bench.flush()
        return count / elapsed
