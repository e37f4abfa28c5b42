"""How long ``run_jobs()`` (a ``runworker --burst`` in this process) takes for a handful of jobs, against
rq's burst worker (``Worker.work(burst=True)``) on the same jobs: the end of a burst is most of it.

    uv run --group bench python bench/burst_end.py [--times 10]

For 0, 1 and 10 no-op jobs (``peer_noop``; rq runs the same function): milliseconds per run, median and
max of ``--times``. Redis is a server of the bench's own; PostgreSQL the database BENCH_DATABASE_URL
(default postgres://postgres@127.0.0.1:5432/bench_burst_end, created and migrated if need be), which
``run_jobs`` checks at start as any worker does. Until this change a burst slot that found nothing
waited on the queued list, 0.5 s twice, so every run lasted at least a second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
os.environ["TEST_DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_burst_end"
)
os.environ.setdefault("PEERS_PROBE_URL", "redis://127.0.0.1:1/0")  # peer_noop records nothing for mark 0

from bench.support import start_own_redis_server  # noqa: E402

SERVER = start_own_redis_server("burst-end")

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
import rq  # noqa: E402

from bench.peer_jobs.threaded_jobs import peer_noop  # noqa: E402
from tasks_app import enqueue_many  # noqa: E402
from tasks_app.testing import run_jobs  # noqa: E402

SIZES = (0, 1, 10)


def tasks_app_run(jobs: int) -> float:
    if jobs:
        enqueue_many("peer_noop", [{"mark": 0}] * jobs)
    began = time.perf_counter()
    done = run_jobs(queues="default")
    assert len(done.jobs) == jobs, done.jobs
    return (time.perf_counter() - began) * 1000


def rq_run(jobs: int) -> float:
    connection = redis.Redis.from_url(SERVER.url)
    queue = rq.Queue("bench", connection=connection)
    for _ in range(jobs):
        queue.enqueue(peer_noop, mark=0)
    began = time.perf_counter()
    rq.SimpleWorker([queue], connection=connection).work(burst=True, logging_level="WARNING")
    elapsed = (time.perf_counter() - began) * 1000
    assert queue.count == 0
    return elapsed


def _migrated() -> None:
    import psycopg
    from django.core.management import call_command
    from django.db import connection

    params = {k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "dbname")}
    with psycopg.connect(**params, dbname="postgres", autocommit=True) as admin:
        name = connection.settings_dict["NAME"]
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--times", type=int, default=10, help="runs of each (default 10)")
    args = parser.parse_args()
    if args.times < 1:
        parser.error("--times must be at least 1")
    _migrated()
    figures: dict[tuple[str, int], list[float]] = {}
    try:
        for _ in range(args.times):
            for jobs in SIZES:
                for name, run in (("run_jobs()", tasks_app_run), ("rq SimpleWorker burst", rq_run)):
                    figures.setdefault((name, jobs), []).append(run(jobs))
    finally:
        SERVER.stop()
    print(f"milliseconds per burst run, {args.times} runs each (median, max; ratio: run_jobs / rq):")
    for jobs in SIZES:
        ours, theirs = figures[("run_jobs()", jobs)], figures[("rq SimpleWorker burst", jobs)]
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"  {jobs:>2} jobs  run_jobs() {statistics.median(ours):7.1f} {max(ours):7.1f}   "
              f"rq {statistics.median(theirs):7.1f} {max(theirs):7.1f}   {ratio:5.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
