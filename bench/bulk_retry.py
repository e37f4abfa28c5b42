"""Bulk retry benchmark: "retry all failed jobs of this task" on 10,000 failed jobs, among others it must not touch.

    uv run python bench/bulk_retry.py [--failed 10000] [--rounds 3] [--skip-baseline]

The queue holds, each round: ``--failed`` failed jobs of ``feeds.refresh`` (the ones to retry), and
beside them 2,000 failed jobs of another task, 2,000 complete jobs of the same task and 1,000 queued
ones, written as a worker leaves them. The dashboard's own code then counts them (what the
confirmation page shows) and retries them (``tasks_app.operations.act``, what its confirm button
does). The script checks that exactly those jobs changed (every other record is byte for byte what
it was), that each retried job is queued once, and that the queue's invariants hold
(``check_consistency``).

Baseline in the same run: the same jobs retried one at a time with the single-job action
(``retry_job``, one compare-and-set each), as an operator clicking "Retry" would, without the clicks.

Redis: BENCH_REDIS_URL, or else a database leased for this process the way test runs lease theirs
(tests/redis_lease.py), so the bench never writes into another run's database. It must be empty and
is emptied at the end. No PostgreSQL is used.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from saq.job import Job, Status  # noqa: E402

from bench.support import own_redis  # noqa: E402
from tasks_app import operations as ops  # noqa: E402
from tasks_app.engine import sweeping  # noqa: E402
from tasks_app.engine.clock import redis_now_ms  # noqa: E402
from tasks_app.enqueueing.connections import disconnect_all, get_queue  # noqa: E402

TASK, OTHER_TASK = "feeds.refresh", "search.index"
OTHERS = {"failed_other_task": 2000, "complete_same_task": 2000, "queued_same_task": 1000}
TARGET_S = 10.0

# Each action logs (one line for the bulk action, one per job for the baseline); printing 10,000
# lines to a terminal would measure the terminal.
logging.getLogger("tasks_app.operations").setLevel(logging.WARNING)


async def fill(failed: int) -> dict[str, list[str]]:
    """Write the round's jobs as a worker leaves them; returns their keys by kind."""
    queue = get_queue()
    stamp = await redis_now_ms(queue.redis)
    keys: dict[str, list[str]] = {}

    def finished(kind: str, task: str, status: Status, count: int) -> list[Job]:
        jobs = []
        for n in range(count):
            job = Job(task, kwargs={"n": n}, key=f"{kind}-{n}", retries=1, ttl=7 * 86400, queue=queue)
            job.status, job.attempts, job.queued, job.started = status, 1, stamp - 2000, stamp - 1000
            job.completed, job.worker_id = stamp - 500, "bench-worker"
            job.error = (
                "Traceback (most recent call last):\n  ...\nConnectionError: upstream down"
                if status == Status.FAILED
                else None
            )
            jobs.append(job)
        keys[kind] = [job.key for job in jobs]
        return jobs

    records = [
        *finished("failed", TASK, Status.FAILED, failed),
        *finished("failed_other_task", OTHER_TASK, Status.FAILED, OTHERS["failed_other_task"]),
        *finished("complete_same_task", TASK, Status.COMPLETE, OTHERS["complete_same_task"]),
    ]
    for start in range(0, len(records), 1000):
        async with queue.redis.pipeline(transaction=False) as pipe:
            for job in records[start : start + 1000]:
                pipe.set(job.id, queue.serialize(job), ex=job.ttl)
            await pipe.execute()
    queued = [Job(TASK, kwargs={"n": n}, key=f"queued_same_task-{n}") for n in range(OTHERS["queued_same_task"])]
    for start in range(0, len(queued), 500):
        await records.submit_many(queue, queued[start : start + 500])
    keys["queued_same_task"] = [job.key for job in queued]
    return keys


async def snapshot(keys: list[str]) -> list[bytes | None]:
    queue = get_queue()
    found: list[bytes | None] = []
    for start in range(0, len(keys), 1000):
        found += await queue.redis.mget([queue.job_id(key) for key in keys[start : start + 1000]])
    return found


async def one_round(failed: int, baseline: bool) -> dict[str, float]:
    queue = get_queue()
    await queue.redis.flushdb()
    keys = await fill(failed)
    untouched = [key for kind, found in keys.items() if kind != "failed" for key in found]
    before = await snapshot(untouched)
    queued_before = await queue.count("queued")

    started = time.perf_counter()
    if baseline:
        for key in keys["failed"]:
            await ops.aretry_job("default", key, "bench")
        counted_s, changed = 0.0, failed
    else:
        selection = ops.Selection(ops.RETRY, "default", as_of=await redis_now_ms(queue.redis), task=TASK)
        found = await ops.afind(selection)  # the confirmation page
        counted_s = time.perf_counter() - started
        assert found.count == failed, found
        done = await ops.aact(selection, "bench")  # the confirm button
        changed = done.changed
    elapsed = time.perf_counter() - started

    # Exactly those jobs changed: each is queued once more, every other record is as it was.
    assert changed == failed, (changed, failed)
    assert await snapshot(untouched) == before, "a job the retry must not touch was changed"
    retried = [queue.deserialize(raw) for raw in await snapshot(keys["failed"])]
    assert all(job.status == Status.QUEUED and job.retries == 2 for job in retried)
    assert await queue.count("queued") == queued_before + failed
    assert await sweeping.check_consistency(queue) == {"unreferenced": [], "no_ttl": [], "dangling": []}
    return {"total_s": elapsed, "count_s": counted_s, "jobs_per_s": failed / elapsed}


async def main(failed: int, rounds: int, skip_baseline: bool) -> None:
    url = settings.BENCH_REDIS_URL  # bench/settings.py points the default queue there
    print(
        f"Redis {url}; {failed:,} failed jobs of {TASK} to retry, beside",
        ", ".join(f"{n:,} {k}" for k, n in OTHERS.items()),
    )
    with own_redis(url):
        try:
            results = []
            for number in range(1, rounds + 1):
                result = await one_round(failed, baseline=False)
                results.append(result)
                print(
                    f"  bulk round {number}: {result['total_s']:.2f} s in all "
                    f"(counting for the confirmation page {result['count_s']:.2f} s), "
                    f"{result['jobs_per_s']:,.0f} jobs/s"
                )
            median = statistics.median(r["total_s"] for r in results)
            verdict = "met" if median < TARGET_S else "MISSED"
            print(f"bulk retry of {failed:,} failed jobs: median {median:.2f} s (target {TARGET_S:.0f} s: {verdict}); "
                  "only those jobs changed, queue consistent")  # fmt: skip
            if not skip_baseline:
                one = await one_round(failed, baseline=True)
                print(
                    f"baseline, one retry_job at a time: {one['total_s']:.2f} s, {one['jobs_per_s']:,.0f} jobs/s "
                    f"(bulk is {one['total_s'] / median:.1f}x faster)"
                )
        finally:
            await disconnect_all()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--failed", type=int, default=10_000, help="failed jobs to retry (default 10,000)")
    parser.add_argument("--rounds", type=int, default=3, help="bulk rounds; the median is reported (default 3)")
    parser.add_argument("--skip-baseline", action="store_true", help="skip the one-at-a-time baseline")
    options = parser.parse_args()
    if options.failed < 1 or options.rounds < 1:
        parser.error("--failed and --rounds must be at least 1")
    asyncio.run(main(options.failed, options.rounds, options.skip_baseline))
