"""Each hand-written piece of the engine against its plain alternative, interleaved in one run.

    uv run python bench/pieces.py [--rounds 3] [--noop-jobs 20000] [--io-jobs 20000] [--enqueue-jobs 2000]

The pieces (``tasks_app/engine/queue.py``'s ``PIECES``), each turned off alone:

- ``pipelining``: EVALSHA written on a connection of the queue's own, packed by hiredis, replies
  handed out by a streaming reader (``engine/pipelining.py``); plain: redis-py's own ``Script`` call
  on the client's pool.
- ``serializer``: ``AtomicRedisQueue.serialize`` without ``dataclasses.fields``; plain: SAQ's
  ``Job.to_dict()`` dumped by ``json``, the header first as before.
- ``header_first``: the job's state first in its JSON, read and rewritten by string matching in Lua
  (``engine/lua.py``); plain: ``json.dumps(job.to_dict())``, and ``cjson.decode``/``cjson.encode`` in Lua.

Workloads: no-op jobs at concurrency 10 and 20 ms I/O jobs at concurrency 200 through a real
``manage.py runworker`` (the take/finish path: bench/peers.py's jobs, Redis server, marks and CPU
accounting), and ``enqueue_many`` of no-op jobs in this process (the enqueue path). Each round runs
every variant once per workload, in an order that rotates from round to round; the figures are
medians over the rounds, and the gain is the piece's figure over the plain one's. CPU per job (worker
processes + redis-server) varies less than jobs/s on a shared machine: decisions are taken on it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PIECES = ("pipelining", "serializer", "header_first")
VARIANTS = ("all", *(f"no-{piece}" for piece in PIECES))


def choose(variant: str) -> None:
    """Turn off the piece ``variant`` names (``all``: none) in this process."""
    from tasks_app.engine import queue

    for piece in PIECES:
        queue.PIECES[piece] = variant != f"no-{piece}"


def worker_main(variant: str, argv: list[str]) -> None:
    """``manage.py runworker ARGV`` with ``variant``'s pieces (the worker processes of a run)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    choose(variant)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", "runworker", *argv])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--noop-jobs", type=int, default=20_000)
    parser.add_argument("--io-jobs", type=int, default=20_000)
    parser.add_argument("--enqueue-jobs", type=int, default=2_000)
    parser.add_argument("--workloads", default="noop,io200,enqueue", help="comma-separated, of noop, io200, enqueue")
    parser.add_argument("--repeats", type=int, default=3, help="enqueue_many runs per variant and round (default 3)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    args = parser.parse_args()
    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS):
        sys.exit(f"--variants: unknown {', '.join(sorted(unknown))}; choose from {', '.join(VARIANTS)}.")

    from bench.peer_runs import Bench, Workload
    from bench.peer_setup import setup_django, start_redis, worker_env
    from bench.peer_systems import PYTHON, Runworker
    from bench.peers import rotated, warm_up

    class Variant(Runworker):
        def __init__(self, variant: str) -> None:
            super().__init__()
            self.name = self.variant = variant

        def fill(self, task, marks) -> None:
            choose(self.variant)  # the records are written as this variant's worker expects them
            super().fill(task, marks)

        def command(self, concurrency: int) -> list[str]:
            runworker = super().command(concurrency)
            return [PYTHON, "bench/pieces.py", "--worker", self.variant, "--", *runworker[3:]]

    began = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="pieces-logs-"))
    with ExitStack() as stack:
        server = start_redis(stack)
        setup_django(server, stack)
        bench = stack.enter_context(Bench(server, logs, False, worker_env(stack)))
        systems = [Variant(v) for v in variants]
        workloads = [
            Workload("noop", f"no-op, c=10, {args.noop_jobs:,} jobs", "peer_noop", 10, args.noop_jobs, systems),
            Workload("io200", f"20 ms I/O, c=200, {args.io_jobs:,} jobs", "peer_io", 200, args.io_jobs, systems),
        ]
        workloads = [workload for workload in workloads if workload.key in args.workloads.split(",")]
        print(f"{os.cpu_count()} CPUs, shared machine, load average {os.getloadavg()[0]:.2f}; "
              f"Redis {server.url} of the bench's own; {args.rounds} rounds", flush=True)  # fmt: skip
        warm_up(bench, workloads)
        runs: dict[tuple[str, str], list] = {}
        enqueued: dict[str, list[tuple[float, float]]] = {}
        for round_ in range(args.rounds):
            print(f"\nround {round_ + 1}/{args.rounds}", flush=True)
            for workload in workloads:
                print(f"  {workload.key:<8}", end="", flush=True)
                for system in rotated(systems, round_):
                    label = f"r{round_ + 1}-{workload.key}-{system.name}"
                    result = bench.run(system, workload.task, workload.count, workload.concurrency, label)
                    runs.setdefault((workload.key, system.name), []).append(result)
                    print(f"  {system.name} {f'{result.rate:,.0f}/s' if result else 'VOID'}", end="", flush=True)
                print()
            if "enqueue" not in args.workloads.split(","):
                continue
            print(f"  {'enqueue':<8}", end="", flush=True)
            for variant in rotated(variants, round_):
                figure = enqueue_figures(bench, variant, args.enqueue_jobs, args.repeats)
                enqueued.setdefault(variant, []).append(figure)
                print(f"  {variant} {args.enqueue_jobs / enqueued[variant][-1][0]:,.0f}/s", end="", flush=True)
            print()
        choose("all")
        report(args, variants, workloads, runs, enqueued)
        if bench.failures:
            print(f"\n{len(bench.failures)} void run(s):", *bench.failures, sep="\n  ")
    print(f"\nTotal {time.monotonic() - began:.0f} s; load average now {os.getloadavg()[0]:.2f}")


def enqueue_figures(bench, variant: str, count: int, repeats: int = 3) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of this process for ``enqueue_many`` of ``count`` no-op jobs."""
    from tasks_app import enqueue_many

    choose(variant)
    walls, cpus = [], []
    for _ in range(repeats):
        bench.flush()
        wall, cpu = time.perf_counter(), time.process_time()
        enqueue_many("peer_noop", [{"mark": 0}] * count)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def report(args, variants, workloads, runs, enqueued) -> None:
    from bench.peer_report import median

    def figures(key: str, variant: str) -> tuple[float | None, float | None]:
        results = [r for r in runs.get((key, variant), []) if r]
        rate = median([r.rate for r in results])
        cpus = [r.worker_cpu_us + r.redis_cpu_us for r in results if r.worker_cpu_us is not None]
        return rate, median(cpus)

    rows = []
    for workload in workloads:
        for variant in variants:
            rate, cpu = figures(workload.key, variant)
            rows.append((workload.title, variant, rate, cpu))
    for variant in variants if enqueued else ():
        wall = statistics.median(w for w, _ in enqueued[variant])
        cpu = statistics.median(c for _, c in enqueued[variant])
        rows.append((f"enqueue_many, {args.enqueue_jobs:,} jobs", variant, args.enqueue_jobs / wall,
                     cpu / args.enqueue_jobs * 1e6))  # fmt: skip
    print(f"\nMedians of {args.rounds} rounds (CPU: worker processes + redis-server per job; enqueue: this process)")
    print(f"  {'workload':<30} {'variant':<16} {'jobs/s':>9} {'CPU us/job':>11}")
    for title, variant, rate, cpu in rows:
        print(f"  {title:<30} {variant:<16} {rate or 0:>9,.0f} {cpu or 0:>11,.1f}")
    print("\nGain of each piece: plain / piece for CPU per job, piece / plain for jobs/s (1.10 = 10% gain)")
    base = {(title, variant): (rate, cpu) for title, variant, rate, cpu in rows}
    for piece in PIECES:
        plain = f"no-{piece}"
        if plain not in variants or "all" not in variants:
            continue
        for title in dict.fromkeys(title for title, *_ in rows):
            (rate, cpu), (plain_rate, plain_cpu) = base[(title, "all")], base[(title, plain)]
            if rate and plain_rate and cpu and plain_cpu:
                print(f"  {piece:<13} {title:<30} CPU {plain_cpu / cpu:.2f}x   jobs/s {rate / plain_rate:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2], sys.argv[4:] if sys.argv[3:4] == ["--"] else sys.argv[3:])
    else:
        main()
