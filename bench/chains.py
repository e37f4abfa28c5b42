"""What chains cost: no-op throughput without chains, before and after this change, and 3-step chains.

    uv run python bench/chains.py [--jobs 10000] [--chains 3000] [--concurrency 10] [--rounds 3] [--base main]

1. No-op jobs (no chains) on ``manage.py runworker`` of this checkout against ``runworker`` of ``--base`` (a
   commit, default the merge base with ``main``: the code before chains), exported to a temporary folder and
   run with this checkout's interpreter, on the same Redis. The chain code's only cost on that path is one
   falsy ``job.meta`` test per outcome and per run (``engine/chains.py``): the ratio should be 1.0 within noise.
2. ``--chains`` chains of 3 no-op steps (``chain(step(...), step(...), step(...))``, enqueued with
   ``aenqueue``, each one script) on this checkout's ``runworker``: chains/s and jobs/s.

Throughput is N jobs / (the first job's start -> the last job's completion), read from the jobs' records,
so process start-up is not counted. CPU per job is the CPU time of the worker process and of redis-server
while it ran, less that of a run with nothing to do, over N: steadier than throughput on a loaded machine.
Rounds alternate the sides; the median and each round are printed.
Redis is a redis-server of the benchmark's own (a free port, no persistence); PostgreSQL a throwaway database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

from bench.support import start_own_redis_server  # noqa: E402

SERVER = start_own_redis_server("chains")

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402

from bench.support import job_span, throwaway_databases, worker_env  # noqa: E402
from tasks_app import aenqueue_many, chain, step  # noqa: E402
from tasks_app.enqueueing.connections import disconnect_all  # noqa: E402

REDIS_URL = settings.BENCH_REDIS_URL


def fill_plain(count: int) -> None:
    async def go() -> None:
        for start in range(0, count, 2000):
            await aenqueue_many("bench_noop", [{}] * min(2000, count - start))
        await disconnect_all()

    asyncio.run(go())


def fill_chains(count: int) -> None:
    flow = chain(step("bench_noop"), step("bench_noop"), step("bench_noop"))

    async def go() -> None:
        semaphore = asyncio.Semaphore(20)

        async def one() -> None:
            async with semaphore:
                await flow.aenqueue()

        await asyncio.gather(*(one() for _ in range(count)))
        await disconnect_all()

    asyncio.run(go())


def redis_cpu() -> float:
    """CPU seconds the benchmark's redis-server has used."""
    client = redis.Redis.from_url(REDIS_URL)
    info = client.info("cpu")
    client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_worker(cwd: Path, jobs: int, concurrency: int) -> tuple[float, float]:
    """Run ``runworker --burst`` of the checkout at ``cwd`` over what is queued: (jobs/s, CPU s of the
    worker and of redis-server meanwhile)."""
    used, server = resource.getrusage(resource.RUSAGE_CHILDREN), redis_cpu()
    with tempfile.NamedTemporaryFile("w+", prefix="runworker-", suffix=".log", delete=False) as log:
        subprocess.run(
            [sys.executable, "manage.py", "runworker", "--burst", "--skip-checks", "--concurrency", str(concurrency)],
            cwd=cwd, env=worker_env(concurrency, REDIS_URL), check=True, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = done.ru_utime + done.ru_stime - used.ru_utime - used.ru_stime + redis_cpu() - server
    try:
        rate = jobs / job_span(REDIS_URL, jobs) if jobs else 0.0
    except AssertionError:
        print(f"  the worker's log is in {log.name}")
        raise
    os.unlink(log.name)
    return rate, cpu


def export(commit: str, into: Path) -> None:
    """The tree of ``commit`` written to ``into`` (``git archive``): the code before this change."""
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def line(name: str, figures: list[float], unit: str) -> str:
    each = ", ".join(f"{figure:,.0f}" for figure in figures)
    return f"  {name:<28}: median {statistics.median(figures):>8,.0f} {unit} ({each})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000, help="no-op jobs per run (1.)")
    parser.add_argument("--chains", type=int, default=3_000, help="3-step chains per run (2.)")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", default=None, help="the commit before chains (default: merge base with main)")
    args = parser.parse_args()
    base = (
        args.base
        or subprocess.run(
            ["git", "merge-base", "HEAD", "main"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.strip()
    )

    with throwaway_databases(REDIS_URL) as client, tempfile.TemporaryDirectory(prefix="chains-base-") as tmp:
        export(base, Path(tmp))
        print(f"concurrency {args.concurrency}, {args.rounds} rounds, base {base[:10]}, Redis {REDIS_URL}")
        # A worker's start-up and stop with nothing to do: taken off its CPU to leave the CPU per job.
        idle = {cwd: run_worker(cwd, 0, args.concurrency)[1] for cwd in (Path(tmp), ROOT)}
        before, after, chains = [], [], []
        cpu: dict[str, list[float]] = {"before": [], "after": [], "chains": []}
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}...", flush=True)
            sides = [("before", Path(tmp), before), ("after", ROOT, after)]
            for name, cwd, figures in sides if round_ % 2 else reversed(sides):
                client.flushdb()
                fill_plain(args.jobs)
                rate, used = run_worker(cwd, args.jobs, args.concurrency)
                figures.append(rate)
                cpu[name].append((used - idle[cwd]) / args.jobs * 1e6)
            client.flushdb()
            fill_chains(args.chains)
            rate, used = run_worker(ROOT, 3 * args.chains, args.concurrency)
            chains.append(rate)
            cpu["chains"].append((used - idle[ROOT]) / (3 * args.chains) * 1e6)
        print(f"\n{args.jobs:,} no-op jobs, no chains")
        print(line(f"runworker before ({base[:10]})", before, "jobs/s"))
        print(line("runworker with chains", after, "jobs/s"))
        print(f"  {'ratio (medians)':<28}: {statistics.median(after) / statistics.median(before):.3f}x")
        print(line("CPU per job, before", cpu["before"], "us"))
        print(line("CPU per job, after", cpu["after"], "us"))
        print(f"  {'ratio (medians)':<28}: {statistics.median(cpu['after']) / statistics.median(cpu['before']):.3f}x")
        print(f"\n{args.chains:,} chains of 3 no-op steps")
        print(line("jobs", chains, "jobs/s"))
        print(line("chains", [rate / 3 for rate in chains], "chains/s"))
        print(line("CPU per step", cpu["chains"], "us"))


if __name__ == "__main__":
    try:
        main()
    finally:
        SERVER.stop()
