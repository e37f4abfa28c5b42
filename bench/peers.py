"""runworker against its peers, measured in one interleaved run (the issue "Faster than every peer").

    uv sync --group bench
    uv run python bench/peers.py                # the full run: 3 rounds, every workload (about 8 min on 2 cores)
    uv run python bench/peers.py --rounds 1 --only runworker,huey --workloads noop    # a quick look while tuning

Systems, each started the way its users start it, with the same concurrency, on the same Redis:

- ``runworker``: ``manage.py runworker --concurrency N --workers 1`` (tasks_app, ``bench.settings``);
- ``saq``: the bare ``saq`` CLI worker on SAQ's own ``RedisQueue`` (no Django);
- ``huey``: ``huey_consumer -k thread -w N -q`` on a ``RedisHuey``;
- ``dramatiq``: ``dramatiq --processes 1 --threads N`` on a ``RedisBroker``;
- ``runworker-base``: ``runworker`` of another checkout (``--baseline PATH``, with a ``.venv`` of its
  own, e.g. ``git worktree add /tmp/base COMMIT && (cd /tmp/base && uv sync --group bench)``), its
  jobs queued by that checkout's own ``enqueue_many``: before and after a change, in one run.

Workloads (``--workloads``, default all of them):

- ``noop``: no-op jobs at concurrency 10 (``--noop-jobs``, default 20,000);
- ``io10``: jobs that wait 20 ms (``asyncio.sleep`` in the async workers, ``time.sleep`` in the
  threaded ones) at concurrency 10 (``--io-jobs``, 3,000): at most 500 jobs/s;
- ``io200``: the same at concurrency 200 (``--io200-jobs``, 20,000): at most 10,000 jobs/s;
- ``workers2``: no-op jobs on ``runworker --workers 2`` and ``--workers 1``, concurrency 10 per
  process (``--workers-jobs``, 20,000);
- ``enqueue``: enqueueing no-op jobs into an empty Redis from this process (``bench/peer_enqueue.py``):
  one at a time from a plain sync loop (tasks_app's ``enqueue``, huey, dramatiq, rq) and from async
  code (``aenqueue``), 20 in flight (``aenqueue`` from 20 coroutines; huey and dramatiq from 20
  threads), each ``--enqueue-one-jobs`` (2,000) jobs; and in bulk, tasks_app's ``enqueue_many`` and
  ``aenqueue_many`` against rq's ``Queue.enqueue_many`` for each of ``--enqueue-jobs`` (2,000 and
  20,000). Each round keeps the median of 3 tries, taken in turns.

How workers are measured. Every system runs the same job functions (``bench/peer_jobs/``). All
the jobs are queued before the worker starts, and its process group is stopped once they have
all run. Throughput is N / (last job end - first job start), from times the jobs take
themselves, so start-up is left out. Only the first ``concurrency`` jobs and the last
``2 x concurrency`` in enqueue order record their times (one RPUSH each), so every system pays
the same, small, measuring cost (``--mark-all`` makes every job record its times, to check that
this gives the same span, and shows each slot's time between jobs). Every job adds one to an
in-memory count that a thread publishes every 50 ms; a run counts only if the count reaches N,
not more, and every marked job reported once, else its figure is void. Start-up is process
spawn -> first job start. CPU per job is the CPU time of the worker's processes and of
redis-server while the jobs ran, divided by the jobs.

Fairness. A warm-up runs each system once on 50 jobs, not counted; workers cache their bytecode
(in a temporary folder) even where PYTHONDONTWRITEBYTECODE is set, as deployed code does. Each
round runs every system once per workload, in an order that rotates from round to round; Redis is
flushed between runs. Reported: the median over the rounds, with min-max, and each raw figure.

Redis is a redis-server of the benchmark's own (a free port, no persistence); PostgreSQL a
throwaway database (``TEST_DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/pydotorg_peers_<pid>``,
so ``test_pydotorg_peers_<pid>`` is created and dropped). Worker logs go to a temporary folder,
kept and printed when a run fails or is interrupted (``--keep-logs`` keeps them anyway).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peer_enqueue import Enqueueing
from bench.peer_report import report
from bench.peer_runs import Bench, Enqueued, Runs, Workload
from bench.peer_setup import setup_django, start_redis, worker_env
from bench.peer_systems import BareSaq, BaseRunworker, Dramatiq, Huey, Runworker

SYSTEMS = ("runworker", "saq", "huey", "dramatiq", "runworker-base")
# runworker-base needs --baseline, which adds it: every other system runs by default.
DEFAULT_SYSTEMS = tuple(name for name in SYSTEMS if name != "runworker-base")
WORKLOADS = ("noop", "io10", "io200", "workers2", "enqueue")
WARM_UP_JOBS = 50
ENQUEUE_REPEATS = 3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)

    def names(allowed: Sequence[str]) -> Callable[[str], list[str]]:
        def parse(text: str) -> list[str]:
            chosen = [name.strip() for name in text.split(",") if name.strip()]
            if not chosen or any(name not in allowed for name in chosen):
                raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)} (comma-separated), not {text!r}")
            return list(dict.fromkeys(chosen))

        return parse

    def positive(text: str) -> int:
        try:
            value = int(text.replace(",", "").replace("_", ""))
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"a whole number >= 1, not {text!r}")
        return value

    def sizes(text: str) -> list[int]:
        return [positive(part) for part in text.split(",")]

    add = parser.add_argument
    add("--rounds", type=positive, default=3, help="rounds, each running every system once per workload (default 3)")
    choices = (
        ("--only", SYSTEMS, DEFAULT_SYSTEMS, "SYSTEM", "worker systems"),
        ("--workloads", WORKLOADS, WORKLOADS, "WORKLOAD", "workloads"),
    )
    for flag, allowed, default, item, what in choices:
        add(flag, type=names(allowed), default=list(default), metavar=f"{item},...",
            help=f"{what} to run (default: {','.join(default)})")  # fmt: skip
    add("--noop-jobs", type=positive, default=20_000, help="no-op jobs at concurrency 10 (default 20,000)")
    add("--io-jobs", type=positive, default=3_000, help="20 ms jobs at concurrency 10 (default 3,000)")
    add("--io200-jobs", type=positive, default=20_000, help="20 ms jobs at concurrency 200 (default 20,000)")
    add("--workers-jobs", type=positive, default=20_000, help="no-op jobs for --workers 2 vs 1 (default 20,000)")
    add(
        "--enqueue-jobs",
        type=sizes,
        default=[2_000, 20_000],
        metavar="N,...",
        help="bulk enqueue sizes (default 2000,20000)",
    )
    add("--enqueue-one-jobs", type=positive, default=2_000, help="jobs enqueued one at a time (default 2,000)")
    add(
        "--mark-all",
        action="store_true",
        help="every job records its times (slower for every system alike): shows how far the usual marks "
        "(first and last jobs only) are from the full span",
    )
    add("--baseline", type=Path, metavar="PATH", help="the checkout whose runworker is the system runworker-base")
    add("--keep-logs", action="store_true", help="keep the worker logs even when every run counted")
    args = parser.parse_args()
    if args.baseline is not None and args.only == list(DEFAULT_SYSTEMS):
        args.only.append("runworker-base")
    if "runworker-base" in args.only:
        if args.baseline is None:
            parser.error("--only runworker-base needs --baseline PATH (a checkout to compare with)")
        if not (args.baseline / ".venv" / "bin" / "python").exists() or not (args.baseline / "manage.py").exists():
            parser.error(
                f"--baseline {args.baseline}: not a checkout with its own .venv; make one with "
                f"git worktree add {args.baseline} COMMIT && (cd {args.baseline} && uv sync --group bench)"
            )
    elif args.baseline is not None:
        parser.error("--baseline is used by the system runworker-base: add it to --only")
    return args


def rotated[T](items: Sequence[T], round_: int) -> list[T]:
    """``items`` starting at a different one each round, so that no system always runs first or last."""
    shift = round_ % len(items)
    return [*items[shift:], *items[:shift]]


def warm_up(bench: Bench, workloads: list[Workload]) -> None:
    """Run each system once on a few jobs, not counted: every worker's imports are compiled and cached
    before the timed rounds, and a system that cannot run fails now rather than after minutes."""
    systems = {system.name: system for workload in workloads for system in workload.systems}
    if not systems:
        return
    print(f"\nwarm-up, not counted ({WARM_UP_JOBS} no-op jobs each):", end="", flush=True)
    for name, system in systems.items():
        if bench.run(system, "peer_noop", WARM_UP_JOBS, 10, f"warm-up-{name.replace(' ', '')}") is None:
            sys.exit(f"{name} could not run {WARM_UP_JOBS} jobs; see its log above. Stopping before the timed rounds.")
        print(f"  {name} ok", end="", flush=True)
    print()


def run_rounds(args: argparse.Namespace, bench: Bench, workloads: list[Workload]) -> tuple[Runs, Enqueued]:
    runs: Runs = {}
    enqueued: Enqueued = {}
    enqueueing = Enqueueing(bench) if "enqueue" in args.workloads else None
    warm_up(bench, workloads)
    for round_ in range(args.rounds):
        print(f"\nround {round_ + 1}/{args.rounds}", flush=True)
        for workload in workloads:
            print(f"  {workload.key:<8}", end="", flush=True)
            for system in rotated(workload.systems, round_):
                label = f"r{round_ + 1}-{workload.key}-{system.name.replace(' ', '')}"
                result = bench.run(system, workload.task, workload.count, workload.concurrency, label)
                runs.setdefault((workload.key, system.name), []).append(result)
                figure = f"{result.rate:,.0f}/s ({result.startup:.1f} s)" if result else "VOID"
                print(f"  {system.name} {figure}", end="", flush=True)
            print()
        if enqueueing is not None:
            print(f"  {'enqueue':<8}", end="", flush=True)
            ways = [(count, way) for count in args.enqueue_jobs for way in enqueueing.bulk(count)]
            ways += [(args.enqueue_one_jobs, way) for way in enqueueing.one_at_a_time(args.enqueue_one_jobs)]
            ways += [(args.enqueue_one_jobs, way) for way in enqueueing.in_flight(args.enqueue_one_jobs)]
            # A bulk enqueue lasts a fraction of a second: each round keeps the median of a few, taken in turns.
            figures: dict[tuple[int, str], list[float]] = {}
            for repeat in range(ENQUEUE_REPEATS):
                for count, way in rotated(ways, round_ * ENQUEUE_REPEATS + repeat):
                    figures.setdefault((count, way.name), []).append(enqueueing.measure(way, count))
            for key, values in figures.items():
                enqueued.setdefault(key, []).append(statistics.median(values))
            print("  " + ", ".join(f"{way.name} {count:,}: {enqueued[(count, way.name)][-1]:,.0f}/s"
                                   for count, way in ways), flush=True)  # fmt: skip
    return runs, enqueued


def plan(args: argparse.Namespace, bench: Bench) -> list[Workload]:
    """The worker workloads to run, with their systems."""
    makers = {
        "runworker": Runworker,
        "saq": lambda: BareSaq(bench.loop),
        "huey": Huey,
        "dramatiq": Dramatiq,
        "runworker-base": lambda: BaseRunworker(args.baseline.resolve(), bench.env),
    }
    systems = [makers[name]() for name in args.only]
    workloads = [
        Workload("noop", f"no-op, c=10, {args.noop_jobs:,} jobs", "peer_noop", 10, args.noop_jobs, systems),
        Workload("io10", f"20 ms I/O, c=10, {args.io_jobs:,} jobs", "peer_io", 10, args.io_jobs, systems),
        Workload("io200", f"20 ms I/O, c=200, {args.io200_jobs:,} jobs", "peer_io", 200, args.io200_jobs, systems),
    ]
    if "runworker" in args.only:
        workloads.append(Workload("workers2", f"no-op, c=10 per process, {args.workers_jobs:,} jobs", "peer_noop", 10,
                                  args.workers_jobs, [Runworker(1), Runworker(2)]))  # fmt: skip
    return [workload for workload in workloads if workload.key in args.workloads]


def main() -> None:
    args = parse_args()
    missing = [name for name in ("huey", "dramatiq", "rq") if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(f"The peers are not installed ({', '.join(missing)}): run `uv sync --group bench` first.")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the cleanup below runs on SIGTERM too
    began = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="peers-logs-"))
    bench: Bench | None = None
    finished = False
    with ExitStack() as stack:
        try:
            server = start_redis(stack)
            setup_django(server, stack)
            bench = stack.enter_context(Bench(server, logs, args.mark_all, worker_env(stack)))  # stops every worker
            workloads = plan(args, bench)
            print(f"Python {sys.version.split()[0]}; saq {version('saq')}, huey {version('huey')}, "
                  f"dramatiq {version('dramatiq')}, rq {version('rq')}; {os.cpu_count()} CPUs, "
                  f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
            print(f"Redis: a redis-server of the benchmark's own ({server.url}, no persistence), flushed between runs")
            print(f"{args.rounds} round(s); systems: {', '.join(args.only)}; workloads: {', '.join(args.workloads)}"
                  + ("; --mark-all" * args.mark_all), flush=True)  # fmt: skip
            runs, enqueued = run_rounds(args, bench, workloads)
            report(args, workloads, runs, enqueued)
            finished = True
        finally:
            failures = bench.failures if bench is not None else []
            if failures:
                print(f"\n{len(failures)} void run(s):", *failures, sep="\n  ")
            if (finished and not failures and not args.keep_logs) or not any(logs.iterdir()):
                shutil.rmtree(logs, ignore_errors=True)
            else:
                print(f"\nWorker logs: {logs}")
    print(f"\nTotal {time.monotonic() - began:.0f} s; load average now {os.getloadavg()[0]:.2f}")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
