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
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import psutil
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.peer_enqueue import Enqueueing  # noqa: E402
from bench.peer_jobs import probe  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

PYTHON = sys.executable  # every worker is started by the same interpreter, without `uv run` in between
SYSTEMS = ("runworker", "saq", "huey", "dramatiq", "runworker-base")
WORKLOADS = ("noop", "io10", "io200", "workers2", "enqueue")
POLL_S = 0.05
WARM_UP_JOBS = 50
ENQUEUE_REPEATS = 3
SETTLE_S = 0.3  # after the count reaches N: long enough for a job run twice to be published too


class RunFailed(Exception):
    """A run whose figure is void: the reason says why."""


# --- the systems ------------------------------------------------------------------------------------------


class System:
    """One worker system: how to queue the jobs, and the command that starts its worker."""

    name: str
    processes = 1  # worker processes, each running ``concurrency`` jobs at once
    cwd = ROOT  # where its worker starts

    def fill(self, task: str, marks: Sequence[int]) -> None:
        raise NotImplementedError

    def command(self, concurrency: int) -> list[str]:
        raise NotImplementedError


class Runworker(System):
    def __init__(self, workers: int | None = None) -> None:
        self.processes = workers or 1
        self.name = f"runworker --workers {workers}" if workers else "runworker"

    def fill(self, task: str, marks: Sequence[int]) -> None:
        from tasks_app import enqueue_many

        enqueue_many(task, [{"mark": mark} for mark in marks])

    def command(self, concurrency: int) -> list[str]:
        return [PYTHON, "manage.py", "runworker", "--skip-checks", "--no-reload", "--concurrency", str(concurrency),
                "--workers", str(self.processes), "-v", "0"]  # fmt: skip


class BaseRunworker(Runworker):
    """``runworker`` of the checkout at ``root`` (``--baseline``), on that checkout's own virtualenv."""

    # Run by the baseline's Python, in the baseline's folder: its own tasks_app writes the records its worker reads.
    FILL = (
        "import json, sys, django; django.setup(); from tasks_app import enqueue_many; "
        "enqueue_many(sys.argv[1], [{'mark': mark} for mark in json.load(sys.stdin)])"
    )

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        super().__init__()
        self.name, self.cwd, self.env = "runworker-base", root, env
        self.python = str(root / ".venv" / "bin" / "python")

    def fill(self, task: str, marks: Sequence[int]) -> None:
        subprocess.run([self.python, "-c", self.FILL, task], input=json.dumps(list(marks)).encode(), cwd=self.cwd,
                       env=self.env, check=True)  # fmt: skip

    def command(self, concurrency: int) -> list[str]:
        return [self.python, *super().command(concurrency)[1:]]


class BareSaq(System):
    name = "saq"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def fill(self, task: str, marks: Sequence[int]) -> None:
        from saq import Queue
        from saq.job import Job

        async def fill() -> None:
            queue = Queue.from_url(os.environ["PEERS_PROBE_URL"])
            try:
                for mark in marks:  # one after another: the queue's order is the enqueue order the marks assume
                    await queue.enqueue(Job(function=task, kwargs={"mark": mark}))
            finally:
                await queue.disconnect()

        self.loop.run_until_complete(fill())

    def command(self, concurrency: int) -> list[str]:
        return [PYTHON, "-m", "saq", "bench.peer_jobs.saq_worker.settings"]


class Huey(System):
    name = "huey"

    def fill(self, task: str, marks: Sequence[int]) -> None:
        from bench.peer_jobs import huey_app

        function = getattr(huey_app, task)
        for mark in marks:
            function(mark=mark)

    def command(self, concurrency: int) -> list[str]:
        # -q: warnings only, as runworker's -v 0 (huey logs two INFO lines per task otherwise).
        return [PYTHON, "-m", "huey.bin.huey_consumer", "bench.peer_jobs.huey_app.huey", "-k", "thread",
                "-w", str(concurrency), "-q"]  # fmt: skip


class Dramatiq(System):
    name = "dramatiq"

    def fill(self, task: str, marks: Sequence[int]) -> None:
        from bench.peer_jobs import dramatiq_app

        actor = getattr(dramatiq_app, task)
        for mark in marks:
            actor.send(mark=mark)

    def command(self, concurrency: int) -> list[str]:
        return [PYTHON, "-m", "dramatiq", "bench.peer_jobs.dramatiq_app", "--processes", "1",
                "--threads", str(concurrency)]  # fmt: skip


# --- one run ----------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    rate: float  # jobs/s
    startup: float  # s, spawn -> first job start
    worker_cpu_us: float | None  # CPU of the worker's processes per job, after the first jobs ran
    redis_cpu_us: float | None  # CPU of redis-server per job, same window (None: the run was too short to tell)
    estimate_error: float | None = None  # --mark-all: (rate from the usual marks) / (rate from all) - 1
    gap_ms: float | None = None  # --mark-all: median time from a job's end to the start of the job that took its slot


def mark_plan(count: int, concurrency: int, mark_all: bool) -> list[int]:
    """Each job's ``mark``: its position + 1 for the first ``concurrency`` and the last ``2 x concurrency``
    jobs, which record their times; 0 for the others."""
    return [i + 1 if mark_all or i < concurrency or i >= count - 2 * concurrency else 0 for i in range(count)]


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (0 for those already gone)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for process in processes:
        with suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


class Bench:
    """Runs workers on the benchmark's Redis; on exit, stops every worker it started."""

    def __init__(self, server: RedisServer, logs: Path, mark_all: bool, env: dict[str, str]) -> None:
        self.server = server
        self.env = env
        self.client = server.client()
        self.redis_process = psutil.Process(server.process.pid)
        self.logs = logs
        self.mark_all = mark_all
        self.loop = asyncio.new_event_loop()  # for the async enqueueing APIs, kept so their connections are reused
        self.live: list[subprocess.Popen] = []
        self.failures: list[str] = []

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for process in list(self.live):
            self.stop(process)
        self.loop.close()
        self.client.close()

    def flush(self) -> None:
        self.client.flushall()

    def done(self) -> int:
        return sum(int(value) for value in self.client.hvals(probe.DONE_KEY))

    def run(self, system: System, task: str, count: int, concurrency: int, label: str) -> RunResult | None:
        """Queue ``count`` jobs of ``task``, start the worker, wait for them all; None if the run is void."""
        self.flush()
        total_concurrency = concurrency * system.processes
        marks = mark_plan(count, total_concurrency, self.mark_all)
        system.fill(task, marks)
        log_path = self.logs / f"{label}.log"
        env = {**self.env, "PEERS_CONCURRENCY": str(concurrency)}
        with open(log_path, "wb") as log:
            spawned = time.time()
            process = subprocess.Popen(
                system.command(concurrency), cwd=system.cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole, never left behind
            )  # fmt: skip
        self.live.append(process)
        try:
            try:
                cpu = self._wait(process, count, deadline=time.monotonic() + 60 + count / 50)
            finally:
                self.stop(process)
            return self._result(marks, total_concurrency, count, spawned, cpu)
        except RunFailed as exc:
            self.failures.append(f"{label}: {exc} (log: {log_path})")
            print(f"\n  VOID {label}: {exc}\n  worker log: {log_path}", flush=True)
            return None

    def _wait(self, process: subprocess.Popen, count: int, deadline: float) -> tuple[float, float] | None:
        """Wait until ``count`` jobs ran; returns (worker CPU s, redis CPU s) per job after the first ones
        (None when more than half of the jobs had run by the first look)."""
        base = None
        while True:
            done = self.done()
            if base is None and done:
                base = (done, tree_cpu(process.pid), self._redis_cpu())
            if done >= count:
                worker_cpu, redis_cpu = tree_cpu(process.pid), self._redis_cpu()
                time.sleep(SETTLE_S)
                done = self.done()
                if done != count:
                    raise RunFailed(f"{done} job completions for {count} jobs: some ran more than once")
                jobs = count - base[0]
                if jobs < count / 2:
                    return None
                return (worker_cpu - base[1]) / jobs, (redis_cpu - base[2]) / jobs
            if process.poll() is not None:
                raise RunFailed(f"the worker exited (code {process.returncode}) after {done} of {count} jobs")
            if time.monotonic() > deadline:
                raise RunFailed(f"timed out after {done} of {count} jobs")
            time.sleep(POLL_S)

    def _redis_cpu(self) -> float:
        times = self.redis_process.cpu_times()
        return times.user + times.system

    def _result(
        self, marks: list[int], concurrency: int, count: int, spawned: float, cpu: tuple[float, float] | None
    ) -> RunResult:
        times: dict[int, tuple[float, float]] = {}
        for raw in self.client.lrange(probe.MARKS_KEY, 0, -1):
            mark, start, end = raw.split()
            if int(mark) in times:
                raise RunFailed(f"job {int(mark) - 1} recorded its times twice: it ran more than once")
            times[int(mark)] = (float(start), float(end))
        expected = {mark for mark in marks if mark}
        if set(times) != expected:
            raise RunFailed(f"{len(expected - set(times))} marked jobs did not record their times")
        first_start = min(start for start, _ in times.values())
        rate = count / (max(end for _, end in times.values()) - first_start)
        worker_cpu, redis_cpu = (cpu[0] * 1e6, cpu[1] * 1e6) if cpu else (None, None)
        result = RunResult(rate, first_start - spawned, worker_cpu, redis_cpu)
        if self.mark_all:
            usual = [times[mark] for mark in mark_plan(count, concurrency, False) if mark]
            usual_rate = count / (max(end for _, end in usual) - min(start for start, _ in usual))
            result.estimate_error = usual_rate / rate - 1
            # With every slot busy, the k-th job to end frees the slot that the (k + concurrency)-th job to
            # start takes: the gap between them is the system's own time per job, outside the job function.
            starts = sorted(start for start, _ in times.values())
            ends = sorted(end for _, end in times.values())
            gaps = [starts[k + concurrency] - ends[k] for k in range(count - concurrency)]
            result.gap_ms = statistics.median(gaps) * 1000 if gaps else None
        return result

    def stop(self, process: subprocess.Popen) -> None:
        """SIGTERM to the worker, then SIGKILL to whatever is left of its process group."""
        if process.poll() is None:
            with suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                process.wait(15)
        deadline = time.monotonic() + 5  # a supervisor's or dramatiq's children may still be on their way out
        while time.monotonic() < deadline and _group_alive(process.pid):
            time.sleep(0.05)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        with suppress(ValueError):
            self.live.remove(process)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# --- reporting --------------------------------------------------------------------------------------------


def median(values: Sequence[float | None] | None) -> float | None:
    valid = [v for v in values or () if v is not None]
    return statistics.median(valid) if valid else None


def summary(values: Sequence[float | None], fmt: str = "{:,.0f}") -> str:
    """``median [min-max]``, and how many runs were void."""
    valid = [v for v in values if v is not None]
    if not valid:
        return "void" if values else "-"
    text = f"{fmt.format(statistics.median(valid))} [{fmt.format(min(valid))}-{fmt.format(max(valid))}]"
    return text + (f" ({len(values) - len(valid)} void)" if len(valid) < len(values) else "")


def print_table(columns: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Rows of right-aligned cells under their columns, each row led by its label."""
    first = max(len(label) for label, _ in rows)
    widths = [max(len(column), *(len(cells[i]) for _, cells in rows)) for i, column in enumerate(columns)]
    print("  " + " " * first + "".join(f"  {column:>{w}}" for column, w in zip(columns, widths, strict=True)))
    for label, cells in rows:
        print(f"  {label:<{first}}" + "".join(f"  {cell:>{w}}" for cell, w in zip(cells, widths, strict=True)))


def target_line(name: str, ours: float | None, reference: float | None, factor: float, what: str) -> str:
    """``ours / reference`` against ``factor``: MET, MISSED, or n/a when a side did not run or was void."""
    if ours is None or reference is None:
        return f"  {name}: n/a ({what} not run, or void)"
    ratio = ours / reference
    verdict = "MET" if ratio >= factor else "MISSED"
    return f"  {name}: {ours:,.0f} / {reference:,.0f} ({what}) = {ratio:.2f}x, target >= {factor:.2f}x  {verdict}"


# --- main -------------------------------------------------------------------------------------------------


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
    choices = (("--only", SYSTEMS, "SYSTEM", "worker systems"), ("--workloads", WORKLOADS, "WORKLOAD", "workloads"))
    for flag, allowed, item, what in choices:
        add(flag, type=names(allowed), default=list(allowed), metavar=f"{item},...",
            help=f"{what} to run (default: {','.join(allowed)})")  # fmt: skip
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


def start_redis(stack: ExitStack) -> RedisServer:
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not on PATH: install Redis (apt-get install redis-server); the benchmark "
                 "starts a server of its own on a free port.")  # fmt: skip
    directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="peers-redis-")))
    server = RedisServer(directory, persistent=False)
    stack.callback(server.stop)
    try:
        server.start()
    except (redis.ConnectionError, OSError) as exc:
        sys.exit(f"Could not start redis-server on port {server.port}: {exc}")
    return server


def setup_django(server: RedisServer, stack: ExitStack) -> None:
    """Point Django, tasks_app and every worker at the benchmark's Redis; create the throwaway database."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        BENCH_REDIS_URL=server.url,
        TEST_REDIS_URL=server.url,  # else the test settings would lease a database on the shared Redis
        PEERS_PROBE_URL=server.url,
    )
    os.environ.setdefault("TEST_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/pydotorg_peers_{os.getpid()}")
    import django

    django.setup()
    from django.db import OperationalError, connection

    from bench.support import throwaway_databases

    try:
        stack.enter_context(throwaway_databases(server.url))
    except OperationalError as exc:
        sys.exit(
            f"Cannot create the throwaway PostgreSQL database (TEST_DATABASE_URL): {str(exc).strip()}\n"
            "Start PostgreSQL (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start), "
            "or point TEST_DATABASE_URL at a server where user postgres may create databases."
        )
    db = connection.settings_dict
    # The workers use the throwaway database itself: runworker checks it at start and drains its outbox.
    os.environ["TEST_DATABASE_URL"] = f"postgres://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    task: str
    concurrency: int
    count: int
    systems: list[System]


def rotated[T](items: Sequence[T], round_: int) -> list[T]:
    """``items`` starting at a different one each round, so that no system always runs first or last."""
    shift = round_ % len(items)
    return [*items[shift:], *items[:shift]]


Runs = dict[tuple[str, str], list[RunResult | None]]
Enqueued = dict[tuple[int, str], list[float]]


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


def report(args: argparse.Namespace, workloads: list[Workload], runs: Runs, enqueued: Enqueued) -> None:
    def rate(key: str, system: str) -> float | None:
        return median([r.rate if r else None for r in runs.get((key, system), [])])

    def results(workload: Workload, system: str, field: str) -> list[float | None]:
        return [getattr(r, field) if r else None for r in runs.get((workload.key, system), [])]

    def section(title: str, cell: Callable[[Workload, str], str]) -> None:
        """One table per group of workloads that share their systems (the peers; runworker's process counts)."""
        print(f"\n{title}")
        for group in (peers, processes):
            if group:
                columns = [system.name for system in group[0].systems]
                print_table(columns, [(w.title, [cell(w, s) for s in columns]) for w in group])

    def cpu(workload: Workload, system: str) -> str:
        worker = median(results(workload, system, "worker_cpu_us"))
        server = median(results(workload, system, "redis_cpu_us"))
        return "-" if worker is None or server is None else f"{worker:,.0f} + {server:,.0f}"

    rounds = f"median [min-max] of {args.rounds} round{'s' * (args.rounds > 1)}"
    peers = [w for w in workloads if w.key != "workers2"]
    processes = [w for w in workloads if w.key == "workers2"]
    startups: dict[str, list[float | None]] = {}
    if workloads:
        section(
            f"Throughput, jobs/s ({rounds}): N / (last job end - first job start)",
            lambda w, s: summary(results(w, s, "rate")),
        )
        for (_, system), outcomes in runs.items():
            startups.setdefault(system, []).extend(r.startup for r in outcomes if r)
        print("\nStart-up, s (median [min-max] over every run): process spawn -> first job start")
        print_table(["start-up"], [(name, [summary(values, "{:.2f}")]) for name, values in startups.items()])
        section("CPU per job, us (medians): worker processes + redis-server, from the first jobs done to the last", cpu)
    if args.mark_all and workloads:
        section(
            "--mark-all: rate from the usual marks / rate from every job's times - 1 (the worst round)",
            lambda w, s: f"{max(results(w, s, 'estimate_error'), key=lambda e: abs(e or 0), default=0) or 0:+.2%}",
        )
        section(
            "--mark-all: a slot's time between jobs, ms: from a job's end to the next start in its slot (median)",
            lambda w, s: summary(results(w, s, "gap_ms"), "{:.2f}"),
        )
    if enqueued:
        print(f"\nEnqueueing no-op jobs into an empty Redis, jobs/s ({rounds})")
        print_table(
            ["jobs/s"],
            [(f"{name}, {count:,} jobs", [summary(values)]) for (count, name), values in enqueued.items()],
        )

    print("\nTargets (ratios of the medians)")
    lines = []
    if any(w.key == "io10" for w in workloads):
        ours = rate("io10", "runworker")
        lines.append(target_line("20 ms I/O, c=10: runworker vs 485 jobs/s", ours, 485, 1.0, "97% of the 500 ceiling"))
        lines.append(target_line("20 ms I/O, c=10: runworker vs huey", ours, rate("io10", "huey"), 1.03, "huey"))
    if "runworker" in startups:
        start = median(startups["runworker"])
        verdict = "n/a" if start is None else f"{start:.2f} s, target <= 1.00 s  {'MET' if start <= 1.0 else 'MISSED'}"
        lines.append(f"  start-up (spawn -> first job start): runworker {verdict}")
    for key, factor, title in (("noop", 1.3, "no-op, c=10"), ("io200", 1.5, "20 ms I/O, c=200")):
        if any(w.key == key for w in workloads):
            ran = [s for s in ("huey", "dramatiq") if rate(key, s) is not None]
            best = max(ran, key=lambda s: rate(key, s) or 0) if ran else None
            what = (best or "huey, dramatiq") + ("" if len(ran) == 2 else " only: the other did not run or was void")
            name = f"{title}: runworker vs the faster of huey and dramatiq"
            lines.append(target_line(name, rate(key, "runworker"), rate(key, best) if best else None, factor, what))
    for count in args.enqueue_jobs if enqueued else ():
        theirs = median(enqueued.get((count, "rq enqueue_many")))
        for name, factor in (("tasks_app enqueue_many", 2.0), ("tasks_app aenqueue_many", 1.0)):
            ours = median(enqueued.get((count, name)))
            lines.append(target_line(f"enqueue {count:,}: {name} vs rq", ours, theirs, factor, "rq enqueue_many"))
    if enqueued:
        one = args.enqueue_one_jobs
        ours = median(enqueued.get((one, "tasks_app enqueue (sync, one at a time)")))
        theirs = median(enqueued.get((one, "huey (sync, one at a time)")))
        lines.append(target_line("sync enqueue, one at a time: tasks_app enqueue vs huey", ours, theirs, 1.0, "huey"))
    for workload in peers if "runworker-base" in args.only and "runworker" in args.only else ():
        ours, base = rate(workload.key, "runworker"), rate(workload.key, "runworker-base")
        lines.append(target_line(f"{workload.title}: runworker vs runworker-base, jobs/s", ours, base, 0.95, "base"))
        cpus = [median(results(workload, s, "worker_cpu_us")) for s in ("runworker", "runworker-base")]
        servers = [median(results(workload, s, "redis_cpu_us")) for s in ("runworker", "runworker-base")]
        if None not in cpus and None not in servers:
            ours_cpu, base_cpu = cpus[0] + servers[0], cpus[1] + servers[1]
            lines.append(
                f"  {workload.title}: CPU per job (worker + redis-server) {ours_cpu:,.0f} us vs runworker-base "
                f"{base_cpu:,.0f} us = {ours_cpu / base_cpu:.2f}x, target <= 1.05x  "
                f"{'MET' if ours_cpu <= 1.05 * base_cpu else 'MISSED'}"
            )
    if processes:
        two, one = rate("workers2", "runworker --workers 2"), rate("workers2", "runworker --workers 1")
        lines.append(target_line("no-op: runworker --workers 2 vs --workers 1", two, one, 1.6, "one process"))
    print("\n".join(lines) if lines else "  (none of the targets' workloads ran)")

    print("\nRaw, per round: jobs/s (start-up s)")
    for (key, system), outcomes in runs.items():
        cells = [f"{r.rate:,.0f} ({r.startup:.2f})" if r else "void" for r in outcomes]
        print(f"  {key:<8} {system:<21}", "  ".join(cells))
    for (count, name), values in enqueued.items():
        print(f"  enqueue  {name:<33} {count:>6,}:", "  ".join(f"{v:,.0f}" for v in values))


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


def worker_env(stack: ExitStack) -> dict[str, str]:
    """The environment of every worker: this one's, with Python's bytecode cached in a folder of the run's own.

    Deployed code has its bytecode cached; where PYTHONDONTWRITEBYTECODE is set (as on the team's
    machine), each start would compile every module it imports from source instead (about a second
    for Django). The cache goes to a temporary folder, so nothing is written beside the code.
    """
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = stack.enter_context(tempfile.TemporaryDirectory(prefix="peers-pycache-"))
    return env


def main() -> None:
    args = parse_args()
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
