"""Soak: mixed jobs through several runworker processes while workers are SIGKILLed and Redis restarts.

    uv run python bench/soak.py [--jobs 20000] [--workers 3] [--concurrency 20] [--kill-every 4]

The workload (its shares of ``--jobs``):

- 60% no-op, 30% 50 ms sleeps: each ends complete;
- 5% fail their first attempt, then succeed (retries=5): complete;
- 2.5% fail every attempt (retries=1): failed;
- 1.5% time out (timeout=1 s, sleeping 3 s, retries=0): failed;
- 1% run for two minutes and are aborted by a second client as soon as they are running: aborted.

Faults: every ``--kill-every`` seconds a random worker is SIGKILLed and a new one started; the
soak's own Redis server (AOF, fsync always) is restarted once, when 40% of the jobs have ended.
Workers heartbeat every job (heartbeat 2 s) and sweep every second.

It prints what ended how against what the workload implies, and the figures that must be 0:
jobs lost, jobs not in a terminal state once the queue has drained, job keys without a TTL.
A job whose last allowed attempt was SIGKILLed ends aborted by the sweep, not failed or
complete: those are counted and named. Executions beyond what the workload needs (one per
job, two for the jobs that fail on purpose) are counted, with how many of them follow a
SIGKILL of the worker that ran the job before (at-least-once delivery).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer  # noqa: E402

SOAK_DIR = Path(tempfile.mkdtemp(prefix="soak-redis-"))
SERVER = RedisServer(SOAK_DIR).start()
os.environ["BENCH_REDIS_URL"] = SERVER.url
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from saq.job import TERMINAL_STATUSES, Status  # noqa: E402

from bench.support import throwaway_databases  # noqa: E402
from tasks_app.engine import records, sweeping  # noqa: E402
from tasks_app.enqueueing.api import aenqueue_many  # noqa: E402
from tasks_app.enqueueing.connections import disconnect_all, make_queue  # noqa: E402

RECORD_URL = settings.REDIS_URL  # the machine's Redis, a database this run leased: it is never restarted

KINDS = {
    # kind: (share, task, kwargs, options, expected terminal status, executions it needs)
    "no-op": (0.60, "soak_noop", {}, {"retries": 3}, Status.COMPLETE, 1),
    "50 ms sleep": (0.30, "soak_sleep", {"seconds": 0.05}, {"retries": 3}, Status.COMPLETE, 1),
    "fails once": (0.05, "soak_flaky", {}, {"retries": 5, "retry_delay": 0.1, "retry_backoff": 1}, Status.COMPLETE, 2),
    "always fails": (0.025, "soak_fail", {}, {"retries": 1, "retry_delay": 0.1}, Status.FAILED, 2),
    "times out": (0.015, "soak_long", {"seconds": 3}, {"retries": 0, "timeout": 1}, Status.FAILED, 1),
    "aborted": (0.01, "soak_long", {"seconds": 120}, {"retries": 3, "timeout": 300}, Status.ABORTED, 1),
}


class Workers:
    def __init__(self, count: int, concurrency: int) -> None:
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "TEST_DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "BENCH_REDIS_URL": SERVER.url,
            "SOAK_RECORD_URL": RECORD_URL,
            "PYTHONUNBUFFERED": "1",
            "BENCH_SAQ": json.dumps(
                {
                    "DEFAULT_JOB_OPTIONS": {"heartbeat": 2, "timeout": 300, "retries": 3, "ttl": 24 * 3600},
                    "TIMERS": {"schedule": 1, "worker_info": 2, "sweep": 1, "abort": 1, "outbox": 5},
                    "SHUTDOWN_GRACE_PERIOD": 5,
                }
            ),
        }
        self.concurrency = concurrency
        self.log = open(SOAK_DIR / "workers.log", "w")  # noqa: SIM115 (closed in stop())
        self.processes = [self._start() for _ in range(count)]
        self.killed: dict[int, int] = {}  # pid -> when it was SIGKILLed (epoch ms)
        self.exited = 0

    def _start(self) -> subprocess.Popen:
        argv = [sys.executable, "manage.py", "runworker", "--skip-checks", "--no-reload", "-v", "1",
                "--concurrency", str(self.concurrency)]  # fmt: skip
        return subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def kill_one(self) -> None:
        index = random.randrange(len(self.processes))
        victim = self.processes[index]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.killed[victim.pid] = int(time.time() * 1000)
        self.processes[index] = self._start()

    def restart_exited(self) -> None:
        """A worker started while Redis was restarting exits 2 at once (fail fast): start it again,
        as systemd or Kubernetes would."""
        for index, process in enumerate(self.processes):
            if process.poll() is not None:
                self.exited += 1
                self.processes[index] = self._start()

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.wait(60)
        self.log.close()


async def enqueue_workload(total: int) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for kind, (share, task, kwargs, options, _, _) in KINDS.items():
        count = max(1, round(total * share))
        jobs = await aenqueue_many(task, [kwargs] * count, **options)
        keys[kind] = [job.key for job in jobs]
    await disconnect_all()
    return keys


async def abort_client(queue, keys: list[str], done: asyncio.Event) -> None:
    """A second client: abort each long job as soon as it is running (again, if a kill re-queued it)."""
    pending = set(keys)
    while pending and not done.is_set():
        try:
            for key, job in zip(list(pending), await queue.jobs(list(pending)), strict=True):
                if job is None or job.status in TERMINAL_STATUSES:
                    pending.discard(key)
                elif job.status == Status.ACTIVE:
                    await records.request_abort(queue, key, "soak: aborted by the second client")
        except (redis.RedisError, OSError):
            pass  # Redis is restarting: try again
        await asyncio.sleep(0.2)


async def run_faults(args, keys: dict[str, list[str]], workers: Workers) -> float:
    queue = make_queue("default", socket_timeout=5)
    await queue.connect()
    done = asyncio.Event()
    aborter = asyncio.create_task(abort_client(queue, keys["aborted"], done))
    total = sum(len(k) for k in keys.values())
    started = last_kill = last_progress = time.monotonic()
    restarted = False
    previous = None
    while True:
        await asyncio.sleep(0.5)
        try:
            remaining = await queue.count("incomplete") + await queue.count("active")
        except (redis.RedisError, OSError):
            continue
        if remaining == 0:
            break
        workers.restart_exited()
        if remaining != previous:
            previous, last_progress = remaining, time.monotonic()
        elif time.monotonic() - last_progress > 120:
            await report_stall(queue)
            break
        if not restarted and total - remaining >= 0.4 * total:
            print(
                f"  {time.monotonic() - started:5.1f}s restarting Redis ({total - remaining:,} jobs ended)", flush=True
            )
            SERVER.stop()
            await asyncio.sleep(1)
            SERVER.start()
            restarted = True
        if time.monotonic() - last_kill >= args.kill_every:
            workers.kill_one()
            last_kill = time.monotonic()
            print(f"  {last_kill - started:5.1f}s SIGKILLed a worker; {remaining:,} jobs to go", flush=True)
    drained = time.monotonic() - started
    done.set()
    await aborter
    await queue.disconnect()
    return drained


async def report_stall(queue) -> None:
    print("STALLED: no job ended for 120 s. What is left:")
    ids = set(await queue.redis.lrange(queue.active_key, 0, -1)) | set(
        await queue.redis.zrange(queue.incomplete_key, 0, -1)
    )
    for job_id in ids:
        raw = await queue.redis.get(job_id)
        print(f"  {job_id.decode()}: {raw[:400] if raw else None}")
    print(f"  queued list: {await queue.redis.lrange(queue.queued_key, 0, -1)}")


def analyse(keys: dict[str, list[str]], workers: Workers, drained: float) -> None:
    asyncio.run(_analyse(keys, workers, drained))


async def _analyse(keys: dict[str, list[str]], workers: Workers, drained: float) -> None:
    queue = make_queue("default")
    records = redis.Redis.from_url(RECORD_URL)
    ended: Counter[Status] = Counter()
    expected: Counter[Status] = Counter()
    lost = non_terminal = extra = extra_after_kill = 0
    swept_last: Counter[str] = Counter()
    for kind, kind_keys in keys.items():
        want, needed = KINDS[kind][4], KINDS[kind][5]
        expected[want] += len(kind_keys)
        for start in range(0, len(kind_keys), 1000):
            chunk = kind_keys[start : start + 1000]
            for key, job in zip(chunk, await queue.jobs(chunk), strict=True):
                if job is None:
                    lost += 1
                    continue
                ended[job.status] += 1
                if job.status not in TERMINAL_STATUSES:
                    non_terminal += 1
                elif job.status != want:
                    if job.status == Status.ABORTED and "swept" in (job.error or ""):
                        swept_last[kind] += 1
                    else:
                        print(f"  UNEXPECTED: {kind} job {key} ended {job.status.value}: {job.error}")
                runs = [tuple(map(int, line.split())) for line in records.lrange(f"exec:{key}", 0, -1)]
                if len(runs) > needed:
                    extra += len(runs) - needed
                    # A re-run follows a SIGKILL when the worker of the run before it was killed in between.
                    extra_after_kill += sum(
                        1 for (pid, began), (_, next_began) in itertools.pairwise(runs)
                        if began <= workers.killed.get(pid, -1) <= next_began
                    )  # fmt: skip
    no_ttl = sum(1 for key in SERVER.client().scan_iter("saq:job:*") if SERVER.client().ttl(key) == -1)
    report = await sweeping.check_consistency(queue)
    await queue.disconnect()
    records.close()

    total = sum(len(k) for k in keys.values())
    print(f"\nenqueued                                  {total:>7,}")
    for status in (Status.COMPLETE, Status.FAILED, Status.ABORTED):
        print(f"ended {status.value:<36}{ended[status]:>7,}   (the workload implies {expected[status]:,})")
    if swept_last:
        explained = ", ".join(f"{n} {kind}" for kind, n in swept_last.items())
        print(f"  ended aborted by the sweep because their last allowed attempt was SIGKILLed: {explained}")
    print(f"lost                                      {lost:>7,}   (must be 0)")
    print(f"not terminal after the drain              {non_terminal:>7,}   (must be 0)")
    print(f"job keys without a TTL                    {no_ttl:>7,}   (must be 0)")
    print(f"broken invariants (check_consistency)     {sum(map(len, report.values())):>7,}   (must be 0)")
    print(f"executions beyond what the workload needs {extra:>7,}   ({extra_after_kill:,} follow a SIGKILL)")
    print(f"workers SIGKILLed                         {len(workers.killed):>7,}")
    print(f"workers that exited at start (Redis down) {workers.exited:>7,}   (restarted)")
    print(f"time to drain                             {drained:>7.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--kill-every", type=float, default=4.0)
    args = parser.parse_args()
    try:
        with throwaway_databases(SERVER.url):
            redis.Redis.from_url(RECORD_URL).flushdb()
            keys = asyncio.run(enqueue_workload(args.jobs))
            print(f"{sum(map(len, keys.values())):,} jobs enqueued; {args.workers} workers x {args.concurrency}")
            workers = Workers(args.workers, args.concurrency)
            try:
                drained = asyncio.run(run_faults(args, keys, workers))
            finally:
                workers.stop()
            analyse(keys, workers, drained)
            print(f"(worker logs: {SOAK_DIR / 'workers.log'})")
            redis.Redis.from_url(RECORD_URL).flushdb()
    finally:
        SERVER.stop()


if __name__ == "__main__":
    main()
