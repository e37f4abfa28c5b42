"""What priorities, rate limits and concurrency keys cost on the hot path, and what a rate limit delivers.

    uv sync --group bench
    uv run python bench/limits.py                          # 5 rounds of 20,000 no-op jobs, then the limited run
    uv run python bench/limits.py --rounds 2 --noop-jobs 5000 --limited-jobs 1000 --rate 100/s   # a quick look

1. **No-op throughput, none of the features used**: ``runworker`` of this checkout against ``runworker`` of
   ``--baseline-ref`` (default ``main``: its take path, before the feature), in the same run, rounds
   interleaved (the order rotates), each the way ``bench/peers.py`` drives workers (jobs queued first,
   throughput from the jobs' own start and end times). The baseline is that commit's files
   (``git archive``) with a virtualenv of their own, made once in ``--baseline-dir``. Target: no more than
   3% slower (the median of the rounds). CPU per job (the worker's processes and redis-server) is printed
   too: on a shared machine it moves less than throughput.
2. **A rate-limited task against its limit**: ``--limited-jobs`` jobs of ``bench/limit_jobs.py``'s
   ``limited_noop`` (``@task(rate_limit=RATE)``, one limiter). Printed: the throughput against the limit
   (from the jobs' own times, as above); from the start each job's record holds (stamped on Redis's
   clock by the take that admitted it), the most starts in any window of the period (never above the
   limit), and how late each job started after the earliest moment the limit allowed it (the start of
   the job ``count`` places before it, plus the period): the median and 95th percentile, which is
   the cost of parking a job and waking a worker for it, not a scheduler tick.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.peer_runs import Bench  # noqa: E402
from bench.peer_setup import setup_django, start_redis, worker_env  # noqa: E402
from bench.peer_systems import BaseRunworker, Runworker  # noqa: E402

CONCURRENCY = 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--rounds", type=int, default=5, help="no-op rounds, each running both workers once (default 5)")
    add("--noop-jobs", type=int, default=20_000, help="no-op jobs per run (default 20,000)")
    add("--baseline-ref", default="main", help="the commit whose runworker is the baseline (default main)")
    add("--baseline-dir", type=Path, default=Path(tempfile.gettempdir()) / "tasks-app-limits-base",
        help="where the baseline's files and virtualenv are made, once per commit")  # fmt: skip
    add("--rate", default="200/s", help="the rate limit of the limited run (default 200/s)")
    add("--limited-jobs", type=int, default=2_000, help="jobs of the limited run (default 2,000)")
    add("--skip-noop", action="store_true", help="only the limited run")
    return parser.parse_args()


def baseline(ref: str, where: Path) -> Path:
    """``ref``'s files with a virtualenv of their own (``uv sync --frozen --group bench``), made once."""
    sha = subprocess.run(["git", "rev-parse", ref], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    root = where / sha[:12]
    if not (root / ".venv" / "bin" / "python").exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        print(f"baseline {ref} ({sha[:12]}): making its virtualenv in {root} ...", flush=True)
        subprocess.run(["uv", "sync", "--frozen", "--group", "bench", "-q"], cwd=root, check=True)
    return root


def noop_rounds(args: argparse.Namespace, bench: Bench, base: Path) -> None:
    systems = [Runworker(), BaseRunworker(base, bench.env)]
    systems[0].name = "runworker (this checkout)"
    systems[1].name = f"runworker ({args.baseline_ref})"
    rates: dict[str, list[float]] = {system.name: [] for system in systems}
    cpu: dict[str, list[float]] = {system.name: [] for system in systems}  # us per job, worker + redis-server
    for system in systems:  # warm-up, not counted: bytecode compiled, a broken system fails now
        if bench.run(system, "peer_noop", 50, CONCURRENCY, f"warm-up-{len(rates[system.name])}") is None:
            sys.exit(f"{system.name} could not run 50 jobs")
    print(f"\nNo-op jobs, c={CONCURRENCY}, {args.noop_jobs:,} per run, none of the features used:", flush=True)
    for round_ in range(args.rounds):
        order = systems if round_ % 2 == 0 else systems[::-1]
        figures = []
        for system in order:
            result = bench.run(system, "peer_noop", args.noop_jobs, CONCURRENCY, f"r{round_}-{system.name[:12]}")
            if result is not None:
                rates[system.name].append(result.rate)
                per_job = ""
                if result.worker_cpu_us is not None and result.redis_cpu_us is not None:
                    cpu[system.name].append(result.worker_cpu_us + result.redis_cpu_us)
                    per_job = f" ({cpu[system.name][-1]:.0f} us CPU/job)"
                figures.append(f"{system.name} {result.rate:,.0f}/s{per_job}")
        print(f"  round {round_ + 1}: " + ", ".join(figures), flush=True)
    ours, theirs = (statistics.median(rates[system.name]) for system in systems)
    print(f"  median: this checkout {ours:,.0f}/s, {args.baseline_ref} {theirs:,.0f}/s: "
          f"{ours / theirs:.3f}x ({(ours / theirs - 1) * 100:+.1f}%; target no worse than -3%)")  # fmt: skip
    per_round = [a / b for a, b in zip(*(rates[system.name] for system in systems), strict=False)]
    print("  per round (this / baseline): " + ", ".join(f"{ratio:.3f}" for ratio in per_round))
    if all(cpu.values()):
        ours_cpu, theirs_cpu = (statistics.median(cpu[system.name]) for system in systems)
        # CPU per job (worker processes + redis-server) moves less than wall-clock throughput on a shared machine.
        print(f"  CPU per job (worker + redis-server), median: this checkout {ours_cpu:.0f} us, "
              f"{args.baseline_ref} {theirs_cpu:.0f} us: {ours_cpu / theirs_cpu:.3f}x")  # fmt: skip


def limited_run(args: argparse.Namespace, bench: Bench) -> None:
    from tasks_app.engine.limits import parse_rate

    count, period_ms = parse_rate(args.rate)
    period = period_ms / 1000
    bench.mark_all = True  # every job records its start
    result = bench.run(Runworker(), "limited_noop", args.limited_jobs, CONCURRENCY, "limited")
    bench.mark_all = False
    if result is None:
        client, queued = bench.client, "saq:default:queued"
        print(f"  state: Redis TIME {client.time()}, queued {client.llen(queued)}, active "
              f"{client.llen('saq:default:active')}, waiting {client.llen(queued + ':waiting:r:bench')}, "
              f"limited {client.zrange(queued + ':limited', 0, -1, withscores=True)}, window "
              f"{client.zcard('saq:limit:rate:bench')} (pttl {client.pttl('saq:limit:rate:bench')})")  # fmt: skip
        sys.exit("the limited run failed: see its log")
    # Each job's start as its record holds it: stamped by the take that admitted it, on Redis's clock (the
    # clock the limit is kept on; the job's own time.time() comes later, after the worker's hand-off).
    records = bench.client.mget(list(bench.client.scan_iter("saq:job:default:*", count=1000)))
    starts = sorted(json.loads(raw)["started"] / 1000 for raw in records if raw)
    if len(starts) != args.limited_jobs:
        sys.exit(f"{len(starts)} job records for {args.limited_jobs} jobs")
    most, first = 0, 0
    for last, start in enumerate(starts):  # the most starts within any window of one period (host clock)
        while start - starts[first] >= period:
            first += 1
        most = max(most, last - first + 1)
    late = [(starts[k] - (starts[k - count] + period)) * 1000 for k in range(count, len(starts))]
    steady = (len(starts) - count) / (starts[-1] - starts[count - 1]) if len(starts) > count else float("nan")
    print(f"\nRate-limited task: rate_limit={args.rate!r}, {args.limited_jobs:,} jobs queued at once, c={CONCURRENCY}:")
    print(f"  throughput {result.rate:,.1f}/s overall (the first {count} start at once), "
          f"{steady:,.1f}/s after the first window; the limit: {count / period:,.1f}/s")  # fmt: skip
    print(f"  most starts in any {period:g} s window (Redis's clock, as the jobs' records say): {most} (limit {count})")
    if late:
        quantiles = statistics.quantiles(late, n=20)
        print(f"  start after the earliest moment the limit allowed: median {statistics.median(late):.1f} ms, "
              f"p95 {quantiles[18]:.1f} ms, max {max(late):.1f} ms")  # fmt: skip


def main() -> None:
    args = parse_args()
    os.environ["BENCH_RATE_LIMIT"] = args.rate
    base = None if args.skip_noop else baseline(args.baseline_ref, args.baseline_dir)
    logs = Path(tempfile.mkdtemp(prefix="limits-logs-"))
    began = time.monotonic()
    with ExitStack() as stack:
        server = start_redis(stack)
        setup_django(server, stack)
        bench = stack.enter_context(Bench(server, logs, False, worker_env(stack)))
        print(f"Python {sys.version.split()[0]}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
              f"Redis of its own at {server.url}")  # fmt: skip
        if base is not None:
            noop_rounds(args, bench, base)
        limited_run(args, bench)
        failures = bench.failures
    if failures:
        print(f"\n{len(failures)} void run(s):", *failures, sep="\n  ")
        print(f"Worker logs: {logs}")
        sys.exit(1)
    shutil.rmtree(logs, ignore_errors=True)
    print(f"\nTotal {time.monotonic() - began:.0f} s; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
