"""Throughput of runworker against its baselines, measured in one run.

    uv run python bench/throughput.py [--noop-jobs 10000] [--orm-jobs 5000] [--concurrency 10] [--rounds 2]

1. No-op async jobs: ``manage.py runworker`` vs a bare ``saq`` CLI worker, same
   concurrency, same Redis (a database of the benchmark's own, leased like a test run's).
2. Jobs doing one async ORM read and one write: ``runworker`` vs the same ORM
   work driven by a bare asyncio loop at the same concurrency, with no queue.

Worker throughput is taken from the jobs' own timestamps in Redis (first start
to last completion), so process start-up is not counted on either side.
Rounds alternate the two sides; the best round of each is compared.
Targets: no-op >= 0.95x bare SAQ; ORM >= 0.75x the bare loop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from asgiref.sync import sync_to_async  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, connections  # noqa: E402
from saq import Queue  # noqa: E402
from saq.job import Job  # noqa: E402

from bench.jobs import bench_orm_read_write  # noqa: E402
from bench.support import job_span, throwaway_databases, worker_env  # noqa: E402
from tests.sampleapp.models import Note  # noqa: E402

REDIS_URL = settings.BENCH_REDIS_URL


async def fill_queue(function: str, count: int, kwargs: dict | None = None) -> None:
    """Enqueue ``count`` jobs as plain SAQ jobs (SAQ's defaults), 500 at a time."""
    queue = Queue.from_url(REDIS_URL)
    try:
        for start in range(0, count, 500):
            jobs = [Job(function=function, kwargs=kwargs) for _ in range(min(500, count - start))]
            await asyncio.gather(*(queue.enqueue(job) for job in jobs))
    finally:
        await queue.disconnect()


def flush() -> None:
    redis.Redis.from_url(REDIS_URL).flushdb()


def run_runworker(function: str, count: int, concurrency: int, kwargs: dict | None = None, *flags: str) -> float:
    flush()
    asyncio.run(fill_queue(function, count, kwargs))
    with tempfile.NamedTemporaryFile("w+", prefix="runworker-", suffix=".log", delete=False) as log:
        subprocess.run(
            [sys.executable, "manage.py", "runworker", "--burst", "--skip-checks", "--concurrency", str(concurrency),
             *flags],
            cwd=ROOT, env=worker_env(concurrency, REDIS_URL), check=True, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        rate = count / job_span(REDIS_URL, count)
    except AssertionError:
        print(f"  the worker's log is in {log.name}")
        raise
    os.unlink(log.name)
    return rate


def run_bare_saq(count: int, concurrency: int) -> float:
    flush()
    asyncio.run(fill_queue("noop", count))
    client = redis.Redis.from_url(REDIS_URL)
    worker = subprocess.Popen(
        [sys.executable, "-m", "saq", "bench.saq_settings.settings"],
        cwd=ROOT, env=worker_env(concurrency, REDIS_URL), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while client.zcard("saq:default:incomplete") or client.llen("saq:default:active"):
            time.sleep(0.05)
    finally:
        worker.terminate()
        worker.wait(30)
        client.close()
    return count / job_span(REDIS_URL, count)


def run_bare_loop(count: int, concurrency: int, seed_id: int) -> float:
    async def main() -> float:
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with semaphore:
                await bench_orm_read_write({}, seed_id)

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        rate = count / (time.perf_counter() - started)
        await sync_to_async(connections.close_all, thread_sensitive=True)()  # in the ORM's own thread
        return rate

    return asyncio.run(main())


def report(name: str, ours: list[float], baseline: list[float], baseline_name: str, target: float) -> None:
    best_ours, best_base = max(ours), max(baseline)
    ratio = best_ours / best_base
    print(f"\n{name}")
    print(f"  runworker       : {', '.join(f'{r:,.0f}' for r in ours)} jobs/s (best {best_ours:,.0f})")
    print(f"  {baseline_name:<16}: {', '.join(f'{r:,.0f}' for r in baseline)} jobs/s (best {best_base:,.0f})")
    print(f"  ratio           : {ratio:.2f}x (target >= {target:.2f}x) {'MET' if ratio >= target else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noop-jobs", type=int, default=10_000)
    parser.add_argument("--orm-jobs", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    with throwaway_databases(REDIS_URL):
        seed = Note.objects.create(text="seed")
        database = connection.settings_dict["NAME"]
        print(f"concurrency {args.concurrency}, {args.rounds} rounds, Redis {REDIS_URL}, PostgreSQL {database}")
        noop_ours, noop_saq, orm_ours, orm_loop = [], [], [], []
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}: no-op jobs...", flush=True)
            noop_saq.append(run_bare_saq(args.noop_jobs, args.concurrency))
            noop_ours.append(run_runworker("bench_noop", args.noop_jobs, args.concurrency))
            print(f"round {round_}: ORM jobs...", flush=True)
            orm_loop.append(run_bare_loop(args.orm_jobs, args.concurrency, seed.pk))
            seed_kwargs = {"seed_id": seed.pk}
            orm_ours.append(run_runworker("bench_orm_read_write", args.orm_jobs, args.concurrency, seed_kwargs))
        report(f"{args.noop_jobs:,} no-op async jobs", noop_ours, noop_saq, "bare saq worker", 0.95)
        report(f"{args.orm_jobs:,} jobs with one ORM read + one write", orm_ours, orm_loop, "bare asyncio loop", 0.75)


if __name__ == "__main__":
    main()
