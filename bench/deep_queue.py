"""What a deep queue costs Redis: a retry, and the sweep, against the queue's length.

    uv run python bench/deep_queue.py [--depths 0,100000,1000000] [--jobs 200] [--rounds 3] [--sweep-depths ...]

Retries: the scripts that put a job back (a worker's retry, the sweep's re-queue, the dashboard's retry of
a failed job).

A job that may be on a queued list is taken off it before it is listed again, so that no job is listed
twice; that is an ``LREM``, which scans the list. A running or ended job is not on it, and since
``maybe_listed`` (``engine/lua/codec.py``) its re-queue no longer scans. "before" is the same scripts with
that test forced true (every re-queue scans, as they all did), in the same run.

Each round, at each depth: ``--jobs`` jobs are taken (running), the queued list is filled to the depth with
ids of no record (nothing takes them), and each job is then retried by its worker (``REQUEUE``); as many
failed jobs are retried as the dashboard does (``REPLACE``). The figure is Redis's own time per script
call (``INFO commandstats``, microseconds), the median over the rounds.

The sweep: at each of ``--sweep-depths`` queued jobs, one sweep's search for index entries whose record is
gone (``engine/sweeping.py``), in its slices and, as before, in one call for the whole index: the longest
time Redis was held by one call (``SLOWLOG``) and Redis's time for the whole sweep.

The scheduler: ``--due`` jobs scheduled for the same second, moved to the queued list when due
(``AtomicRedisQueue.schedule``), in its slices and, as before, in one call: the longest call and the total.

Mass eviction: ``--evicted-depth`` queued jobs of which a tenth lost their records; one sweep, with the
bound on the list entries a call's LREMs scan (``GONE_LIST_BUDGET``) and, as before, without it: the longest
call, Redis's time for the sweep, and how many gone entries it took off.

Redis is a server of the bench's own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

from bench.support import start_own_redis_server  # noqa: E402

SERVER = start_own_redis_server("deep-queue")

import django  # noqa: E402

django.setup()

from redis.asyncio import from_url  # noqa: E402
from saq.job import Job, Status  # noqa: E402

from tasks_app.engine import attempts, lua, records, sweeping  # noqa: E402
from tasks_app.engine import queue as queue_module  # noqa: E402
from tasks_app.engine.queue import AtomicRedisQueue  # noqa: E402

GUARD = "    if not cur then return true end\n"
SOURCE = lua.source


def variant_source(before: bool):
    def source(name: str, header_first: bool = True) -> str:
        text = SOURCE(name, header_first)
        if before:
            assert GUARD in text or "maybe_listed" not in text, name
            text = text.replace(GUARD, "    if true then return true end\n")
        return text

    return source


@contextlib.asynccontextmanager
async def fresh_queue(before: bool = False):
    """A queue on the bench's emptied Redis (``before``: with the re-queue's old scan), emptied afterwards."""
    lua.source = variant_source(before)
    try:
        queue = AtomicRedisQueue(from_url(SERVER.url), name="depth")
    finally:
        lua.source = SOURCE
    await queue.connect()
    await queue.redis.flushdb()
    try:
        yield queue
    finally:
        await queue.redis.flushdb()
        await queue.disconnect()


async def fill(queue: AtomicRedisQueue, count: int, **options) -> None:
    """``count`` no-op jobs with ``options``, 5,000 per round trip."""
    for start in range(0, count, 5000):
        await records.submit_many(
            queue, [Job("f", kwargs={"n": n}, **options) for n in range(start, min(count, start + 5000))]
        )


async def measure(before: bool, depth: int, jobs: int) -> tuple[float, float]:
    """Redis's microseconds per call of the worker's retry and of the dashboard's retry, at ``depth``."""
    async with fresh_queue(before) as queue:
        redis = queue.redis
        for index in range(2 * jobs):
            await records.submit(queue, Job("f", key=f"job-{index}", retries=3, timeout=60))
        taken = [await attempts.take(queue, "w1") for _ in range(2 * jobs)]
        for failed in taken[jobs:]:
            await attempts.end_attempt(queue, failed, Status.FAILED, error="boom")
        for start in range(0, depth, 10_000):
            await redis.rpush(queue.queued_key, *(f"filler-{i}" for i in range(start, min(depth, start + 10_000))))
        figures = []
        for run_them in (
            lambda: asyncio.gather(*(attempts.retry_attempt(queue, job, "boom") for job in taken[:jobs])),
            lambda: asyncio.gather(
                *(
                    records.compare_and_set(queue, job.key, lambda j: dataclasses.replace(j, status=Status.QUEUED))
                    for job in taken[jobs:]
                )
            ),
        ):
            await redis.config_resetstat()
            await run_them()
            stats = await redis.info("commandstats")
            figures.append(stats["cmdstat_evalsha"]["usec"] / stats["cmdstat_evalsha"]["calls"])
        return figures[0], figures[1]


async def measure_sweep(depth: int, whole: bool) -> tuple[float, float]:
    """The longest Redis call (ms) and Redis's time (ms) of one sweep of a queue ``depth`` jobs deep;
    ``whole``: the search in one call over the whole index."""
    slice_, per_sweep = sweeping.GONE_SLICE, sweeping.GONE_PER_SWEEP
    if whole:
        sweeping.GONE_SLICE = sweeping.GONE_PER_SWEEP = 10 * depth + 1
    try:
        async with fresh_queue() as queue:
            await fill(queue, depth)
            return await slowest(queue, lambda: sweeping.sweep(queue, lock=0))
    finally:
        sweeping.GONE_SLICE, sweeping.GONE_PER_SWEEP = slice_, per_sweep


async def measure_eviction(depth: int, bounded: bool) -> tuple[float, float, float]:
    """``slowest`` of one sweep of a queue ``depth`` jobs deep of which a tenth lost their records, and the
    gone entries it took off; not ``bounded``: with no bound on the list entries a call's LREMs scan."""
    budget = sweeping.GONE_LIST_BUDGET
    if not bounded:
        sweeping.GONE_LIST_BUDGET = 10**15
    try:
        async with fresh_queue() as queue:
            await fill(queue, depth)
            ids = await queue.redis.lrange(queue.queued_key, 0, -1)
            for start in range(0, depth, 50_000):
                await queue.redis.delete(*ids[start : start + 50_000 : 10])
            found: list = []

            async def sweep() -> None:
                found.extend(await sweeping.sweep(queue, lock=0))

            return (*await slowest(queue, sweep), len(found))
    finally:
        sweeping.GONE_LIST_BUDGET = budget


async def slowest(queue: AtomicRedisQueue, run) -> tuple[float, float]:
    """The longest script call (ms) and Redis's time for the scripts (ms) while ``run()`` is awaited."""
    redis = queue.redis
    await redis.config_set("slowlog-log-slower-than", 0)
    await redis.config_set("slowlog-max-len", 10_000)
    await redis.slowlog_reset()
    await redis.config_resetstat()
    try:
        await run()
        calls = [entry for entry in await redis.slowlog_get(10_000) if entry["command"].startswith(b"EVALSHA")]
        longest = max((entry["duration"] for entry in calls), default=0)
        stats = await redis.info("commandstats")
        return longest / 1000, stats["cmdstat_evalsha"]["usec"] / 1000
    finally:
        await redis.config_set("slowlog-log-slower-than", 10_000)


async def measure_schedule(count: int, whole: bool) -> tuple[float, float]:
    """``slowest`` of the scheduler tick that moves ``count`` jobs due at once; ``whole``: in one call."""
    slice_ = queue_module.SCHEDULE_SLICE
    if whole:
        queue_module.SCHEDULE_SLICE = count + 1
    try:
        async with fresh_queue() as queue:
            due = int(time.time()) + 3
            await fill(queue, count, scheduled=due)
            await asyncio.sleep(max(0.0, due + 1 - time.time()))
            figures = await slowest(queue, lambda: queue.schedule(lock=0))
            assert await queue.count("queued") == count, "every due job moved"
            return figures
    finally:
        queue_module.SCHEDULE_SLICE = slice_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", default="0,100000,1000000", help="queued list lengths, comma-separated")
    parser.add_argument("--jobs", type=int, default=200, help="retries of each kind per measure (default 200)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sweep-depths", default="20000,200000", help="queued jobs for the sweep's figures")
    parser.add_argument("--due", type=int, default=100_000, help="jobs due at once for the scheduler (0: skip)")
    parser.add_argument("--evicted-depth", type=int, default=100_000, help="queued jobs, a tenth gone (0: skip)")
    args = parser.parse_args()
    depths = [int(part) for part in args.depths.split(",")]
    sweep_depths = [int(part) for part in args.sweep_depths.split(",") if part]
    sweeps: dict[tuple[bool, int], list[tuple[float, float]]] = {}
    schedules: dict[bool, list[tuple[float, float]]] = {}
    evictions: dict[int, list[tuple[float, float, float]]] = {}
    results: dict[tuple[bool, int], list[tuple[float, float]]] = {}
    try:
        for round_ in range(args.rounds):
            for depth in depths:
                for before in (round_ % 2 == 0, round_ % 2 == 1):  # alternate which goes first
                    results.setdefault((before, depth), []).append(asyncio.run(measure(before, depth, args.jobs)))
            for depth in sweep_depths:
                for whole in (round_ % 2 == 0, round_ % 2 == 1):
                    sweeps.setdefault((whole, depth), []).append(asyncio.run(measure_sweep(depth, whole)))
            for whole in (round_ % 2 == 0, round_ % 2 == 1) if args.due else ():
                schedules.setdefault(whole, []).append(asyncio.run(measure_schedule(args.due, whole)))
            for bounded in (round_ % 2 == 0, round_ % 2 == 1) if args.evicted_depth else ():
                figures = asyncio.run(measure_eviction(args.evicted_depth, bounded))
                evictions.setdefault(int(bounded), []).append(figures)
    finally:
        SERVER.stop()
    print(f"Redis time per script call, us (median of {args.rounds} rounds, {args.jobs} retries each)")
    print(f"  {'queued list':>12}  {'worker retry':>22}  {'dashboard retry of a failed job':>34}")
    print(f"  {'':>12}  {'before':>8} {'now':>6} {'gain':>6}  {'before':>8} {'now':>6} {'gain':>6}")
    for depth in depths:
        line = f"  {depth:>12,}"
        for which in (0, 1):
            old = statistics.median(r[which] for r in results[(True, depth)])
            new = statistics.median(r[which] for r in results[(False, depth)])
            line += f"  {old:8.1f} {new:6.1f} {old / new:5.1f}x"
        print(line)
    if sweep_depths:
        print(f"\nOne sweep's search for entries whose record is gone, ms of Redis (median of {args.rounds} rounds)")
        print(f"  {'queued jobs':>12}  {'longest call':>24}  {'whole sweep':>24}")
        print(f"  {'':>12}  {'one call':>9} {'slices':>7} {'gain':>6}  {'one call':>9} {'slices':>7} {'ratio':>6}")
        for depth in sweep_depths:
            one = [statistics.median(r[i] for r in sweeps[(True, depth)]) for i in (0, 1)]
            sliced = [statistics.median(r[i] for r in sweeps[(False, depth)]) for i in (0, 1)]
            print(
                f"  {depth:>12,}  {one[0]:9.1f} {sliced[0]:7.1f} {one[0] / sliced[0]:5.0f}x"
                f"  {one[1]:9.1f} {sliced[1]:7.1f} {sliced[1] / one[1]:5.2f}x"
            )

    if schedules:
        one = [statistics.median(r[i] for r in schedules[True]) for i in (0, 1)]
        sliced = [statistics.median(r[i] for r in schedules[False]) for i in (0, 1)]
        rounds = f"median of {args.rounds} rounds"
        print(f"\nThe scheduler's tick moving {args.due:,} jobs due at once, ms of Redis ({rounds})")
        print(f"  longest call: one call {one[0]:.1f}, slices {sliced[0]:.1f} ({one[0] / sliced[0]:.0f}x)")
        print(f"  whole tick:   one call {one[1]:.1f}, slices {sliced[1]:.1f} ({sliced[1] / one[1]:.2f}x)")

    if evictions:
        old, new = ([statistics.median(r[i] for r in evictions[bounded]) for i in (0, 1, 2)] for bounded in (0, 1))
        print(f"\nOne sweep of {args.evicted_depth:,} queued jobs, a tenth of their records gone", end=" ")
        print(f"(median of {args.rounds} rounds): no bound on a call's LREMs, and GONE_LIST_BUDGET")
        print(f"  longest call, ms:        {old[0]:8.1f} {new[0]:8.1f} ({old[0] / new[0]:.0f}x)")
        print(f"  whole sweep, ms:         {old[1]:8.1f} {new[1]:8.1f}")
        print(f"  gone entries taken off:  {old[2]:8,.0f} {new[2]:8,.0f}")


if __name__ == "__main__":
    main()
