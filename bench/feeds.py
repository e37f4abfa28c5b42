"""Feed refresh benchmark: refresh_all_feeds against one feed after another and against the CPU floor,
the all-304 rerun, and a worker's memory with hostile feeds.

    uv run python bench/feeds.py [--feeds 200] [--entries 50] [--latency 0.1] [--concurrency N] [--hostile 20]

Workload: ``--feeds`` RSS feeds of ``--entries`` entries each (about 700 bytes per entry), each
on a host of its own (127.0.0.1, 127.0.0.2, ...: every blog is on its own server), served by an
HTTP server on loopback in its own process that waits ``--latency`` seconds before every
response and answers ``If-None-Match`` with 304.

In one run, on the same feeds and the same database:

1. Sequential baseline, the original's shape: one feed after another, fetch, parse (inline,
   in this process), store, with no concurrency. Same fetch/parse/store code as the tasks.
2. ``refresh_all_feeds`` (entries emptied first, so it does the same work as 1).
3. ``refresh_all_feeds`` again: every feed answers 304.
4. The CPU-bound floor: the parse + store CPU time of 1, divided by the CPUs this process may use.
5. ``--hostile`` feeds of 10 MB each (the style and comment bombs of issue 10, tag soup that keeps
   feedparser's loose parser busy, a flood of unclosed items), each on its own host, refreshed
   by a real ``runworker`` at the default limits: the worker's peak RSS against its idle RSS and
   the documented bound, and the parse processes' peak RSS, measured separately.
6. ``--gzip-bombs`` feeds (default FEEDS_MAX_CONCURRENCY: all at once), each ~100 KB of gzip that
   inflates to 100 MB, refreshed by a worker of their own: its RSS against the same bound.

Targets: 2 within 1.3x of 4 and at least 8x faster than 1; 3 at least 10x faster than 2.

It uses tests.settings with a throwaway PostgreSQL database (django.test.utils.setup_databases:
``test_<name>`` of BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/bench_feeds),
dropped at the end, and a Redis database of its own for the jobs (BENCH_REDIS_URL, default
or a database leased for the run), which must be empty and is flushed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.feed_server import GZIP_BOMB_INFLATED, HOSTILE_KINDS, MB, host, start_server  # noqa: E402
from bench.support import bench_redis_url  # noqa: E402
from pydotorg.blogs.conf import DEFAULTS as FEED_DEFAULTS  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_feeds")
REDIS_URL = bench_redis_url()  # a Redis database of the bench's own
SPEEDUP_TARGET = 8.0
FLOOR_TARGET = 1.3
RERUN_TARGET = 10.0


# --- the benchmark ---------------------------------------------------------------------------


def setup_django(concurrency: int | None):
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["TEST_DATABASE_URL"] = DATABASE_URL
    os.environ["TEST_REDIS_URL"] = REDIS_URL
    import django
    from django.conf import settings

    django.setup()
    settings.FEEDS = {**settings.FEEDS, "ALLOW_PRIVATE_NETWORKS": True}  # the feed servers are on loopback
    if concurrency:
        settings.FEEDS = {**settings.FEEDS, "MAX_CONCURRENCY": concurrency}


async def sequential(feeds) -> dict[str, float]:
    """The original's shape: for each feed, fetch, parse (blocking, inline), store; no overlap.

    Returns the wall seconds of each phase and the CPU seconds of parse and store, summed over the feeds.
    """
    from asgiref.sync import sync_to_async
    from django.utils import timezone

    from pydotorg.blogs.conf import feed_settings
    from pydotorg.blogs.fetching import build_client, fetch
    from pydotorg.blogs.parsing import parse_feed
    from pydotorg.blogs.storing import parse_limits, save_fetch

    config = feed_settings()
    limits = parse_limits(config)
    phases = dict.fromkeys(("fetch", "parse", "store", "parse_cpu", "store_cpu"), 0.0)
    async with build_client(config) as client:
        for feed in feeds:
            started = time.perf_counter()
            fetched = await fetch(client, feed.feed_url, config)
            fetched_at, cpu = time.perf_counter(), time.process_time()
            parsed = parse_feed(fetched.content, fetched.headers, fetched.url, limits)
            parsed_at, parsed_cpu = time.perf_counter(), time.process_time()
            await sync_to_async(save_fetch)(feed, fetched, parsed.entries, timezone.now())
            phases["fetch"] += fetched_at - started
            phases["parse"] += parsed_at - fetched_at
            phases["store"] += time.perf_counter() - parsed_at
            phases["parse_cpu"] += parsed_cpu - cpu
            phases["store_cpu"] += time.process_time() - parsed_cpu  # the ORM thread's time too
    return phases


async def measure(args: argparse.Namespace, port: int) -> dict[str, float]:
    from asgiref.sync import sync_to_async
    from django.db import connection, connections

    from pydotorg.blogs.models import BlogEntry, Feed
    from pydotorg.blogs.tasks import refresh_all_feeds
    from tasks_app.models import OutboxEntry

    def reset() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {BlogEntry._meta.db_table}, {OutboxEntry._meta.db_table}")
        Feed.objects.update(etag="", last_modified="", last_fetched=None)

    def create_feeds() -> list[Feed]:
        Feed.objects.bulk_create(
            Feed(name=f"Blog {i}", feed_url=f"http://{host(i)}:{port}/feed/{i}") for i in range(args.feeds)
        )
        return list(Feed.objects.order_by("pk"))

    try:
        feeds = await sync_to_async(create_feeds)()
        await sequential(feeds[:1])  # warm-up (imports, connections), not timed
        await refresh_all_feeds({})  # warm-up: the parse processes start, not timed
        await sync_to_async(reset)()

        print("sequential baseline...", file=sys.stderr)
        started = time.perf_counter()
        phases = await sequential(feeds)
        baseline = time.perf_counter() - started
        assert await BlogEntry.objects.acount() == args.feeds * args.entries
        await sync_to_async(reset)()

        print("refresh_all_feeds...", file=sys.stderr)
        cpu = time.process_time(), children_cpu()
        started = time.perf_counter()
        first = await refresh_all_feeds({})
        concurrent = time.perf_counter() - started
        used = {"worker_cpu": time.process_time() - cpu[0], "parse_processes_cpu": children_cpu() - cpu[1]}
        assert first["entries_created"] == args.feeds * args.entries and first["feeds_failed"] == 0, first

        started = time.perf_counter()
        second = await refresh_all_feeds({})
        unchanged = time.perf_counter() - started
        assert second["feeds_unchanged"] == args.feeds and second["entries_created"] == 0, second
        await Feed.objects.aupdate(is_active=False)  # the hostile run refreshes only its own feeds
    finally:
        await sync_to_async(connections.close_all)()  # the ORM's thread holds the connection
    return {"baseline": baseline, "concurrent": concurrent, "unchanged": unchanged, **phases, **used}


def children_cpu() -> float:
    """CPU seconds used so far by the processes under this one (the parse processes, which live on)."""
    from tests.blogs.processes import cpu_seconds, descendants

    return sum(cpu_seconds(pid) for pid in descendants(os.getpid()))


# --- memory with hostile feeds ----------------------------------------------------------------


def hostile_run(args: argparse.Namespace, port: int, kind: str = "hostile", count: int = 0) -> dict[str, float]:
    """Refresh ``count`` feeds under /``kind``/ with a real worker (alone); its RSS and the parse processes', in MB."""
    from django.db import connection

    from pydotorg.blogs.models import Feed
    from tasks_app import enqueue
    from tasks_app.enqueueing.connections import background, get_queue
    from tests.blogs.processes import descendants, memory_kb

    async def stored_job(key: str):
        return await get_queue().job(key)

    print(f"{count} {kind} feeds through a worker...", file=sys.stderr)
    Feed.objects.update(is_active=False)  # the earlier run's feeds: each run measures its own kind alone
    Feed.objects.bulk_create(
        Feed(name=f"{kind} {i}", feed_url=f"http://{host(i)}:{port}/{kind}/{i}") for i in range(count)
    )
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TEST_DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "TEST_REDIS_URL": REDIS_URL,
        "FEEDS_ALLOW_PRIVATE_NETWORKS": "true",
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "manage.py", "runworker", "--no-reload", "--skip-checks", "-v", "1"]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ready = threading.Event()
    log: list[str] = []

    def read() -> None:
        for line in worker.stdout:
            log.append(line)
            if "SAQ worker, pid" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    peaks: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:  # the parse processes come and go: watch them while they live
        while not done.is_set():
            for pid in descendants(worker.pid):
                peaks[pid] = max(peaks.get(pid, 0), memory_kb(pid).get("VmHWM", 0))
            time.sleep(0.05)

    try:
        if not ready.wait(60):
            sys.exit("The worker did not start:\n" + "".join(log))
        time.sleep(1)  # let start-up settle before taking the idle figure
        idle = memory_kb(worker.pid)["VmRSS"]
        threading.Thread(target=sample, daemon=True).start()
        started = time.perf_counter()
        job = enqueue("refresh_all_feeds")
        while True:
            current = background.run(stored_job(job.key))
            if current.status in ("complete", "failed", "aborted"):
                break
            if worker.poll() is not None:
                sys.exit("The worker died:\n" + "".join(log))
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        peak = memory_kb(worker.pid)["VmHWM"]
    finally:
        done.set()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
    parse_peaks = [kb for pid, kb in peaks.items() if kb]
    return {
        "idle": idle / 1024,
        "peak": peak / 1024,
        "parse_peak": max(parse_peaks, default=0) / 1024,
        "parse_processes": len(parse_peaks),
        "seconds": elapsed,
        "result": current.result if current.status == "complete" else current.error,
        "errors": dict(Feed.objects.filter(name__startswith=kind).values_list("name", "last_error")),
    }


def run(args: argparse.Namespace) -> int:
    setup_django(args.concurrency)

    from bench.support import throwaway_databases
    from pydotorg.blogs.conf import cpu_count, feed_settings, worker_memory_bound
    from tasks_app.enqueueing.connections import background, disconnect_all

    with throwaway_databases(REDIS_URL):
        server, port = start_server(args)
        try:
            times = asyncio.run(measure(args, port))
            memory = hostile_run(args, port, "hostile", args.hostile) if args.hostile else None
            bombs = hostile_run(args, port, "gzip", args.gzip_bombs) if args.gzip_bombs else None
        finally:
            server.kill()
            background.run(disconnect_all())

    config = feed_settings()
    cores = cpu_count()
    speedup = times["baseline"] / times["concurrent"]
    rerun = times["concurrent"] / times["unchanged"]
    floor = (times["parse_cpu"] + times["store_cpu"]) / cores
    per_feed = {name: times[name] / args.feeds * 1000 for name in ("fetch", "parse", "store", "parse_cpu", "store_cpu")}
    print(
        f"Workload: {args.feeds} feeds x {args.entries} entries, one host each, {args.latency * 1000:.0f} ms added "
        f"latency per response, FEEDS_MAX_CONCURRENCY={config.max_concurrency}, FEEDS_MAX_PER_HOST="
        f"{config.max_per_host}, {config.parse_processes} parse processes, {cores} CPU(s)"
    )
    print(f"  sequential baseline (fetch, parse, store; one at a time):   {times['baseline']:7.2f} s")
    print(f"  refresh_all_feeds, first run (all new):                     {times['concurrent']:7.2f} s")
    print(f"  refresh_all_feeds, second run (every feed 304):             {times['unchanged']:7.2f} s")
    print(f"  CPU-bound floor ((parse + store CPU) / {cores} CPUs):            {floor:7.2f} s")
    spent = times["worker_cpu"] + times["parse_processes_cpu"]
    print(
        f"  CPU refresh_all_feeds used: {spent:.2f} s (this process {times['worker_cpu']:.2f} s: fetch, store, "
        f"hand-over; parse processes {times['parse_processes_cpu']:.2f} s), so at best {spent / cores:.2f} s on "
        f"{cores} CPUs; 1-minute load average, this run included: {os.getloadavg()[0]:.2f}"
    )
    print(
        f"  per feed in the baseline: fetch {per_feed['fetch']:.1f} ms, parse {per_feed['parse']:.1f} ms "
        f"({per_feed['parse_cpu']:.1f} ms CPU), store {per_feed['store']:.1f} ms ({per_feed['store_cpu']:.1f} ms CPU)"
    )
    latency_floor = args.feeds / config.max_concurrency * args.latency
    print(f"  latency floor of a run: {latency_floor:.2f} s (feeds / concurrency x latency)")
    vs_floor = times["concurrent"] / floor
    verdicts = [
        ("first run / CPU floor:   ", vs_floor, f"<= {FLOOR_TARGET:g}x", vs_floor <= FLOOR_TARGET),
        ("speed-up over sequential:", speedup, f">= {SPEEDUP_TARGET:g}x", speedup >= SPEEDUP_TARGET),
        ("first run / all-304 run: ", rerun, f">= {RERUN_TARGET:g}x", rerun >= RERUN_TARGET),
    ]
    for label, ratio, target, ok in verdicts:
        print(f"  {label} {ratio:5.2f}x  (target {target}: {_verdict(ok)})")
    if memory:
        what = f"{args.hostile} feeds of 10 MB ({', '.join(HOSTILE_KINDS)})"
        _print_memory(what, memory, config, worker_memory_bound(config))
    if bombs:
        what = f"{args.gzip_bombs} gzip bombs ({len(gzip.compress(b' ' * GZIP_BOMB_INFLATED)) // 1024} KB sent, "
        _print_memory(f"{what}{GZIP_BOMB_INFLATED // MB} MB inflated)", bombs, config, worker_memory_bound(config))
    return 0


def _print_memory(what: str, memory: dict, config, bound: int) -> None:
    print(
        f"Hostile: {what}, one host each, refreshed at once by runworker in {memory['seconds']:.1f} s; "
        f"FEEDS_MAX_CONCURRENCY={config.max_concurrency}, FEEDS_MAX_BYTES={config.max_bytes}, "
        f"FEEDS_PARSE_CPU_SECONDS={config.parse_cpu_seconds}, FEEDS_PARSE_MEMORY_MB={config.parse_memory_mb}"
    )
    growth = memory["peak"] - memory["idle"]
    print(f"  worker RSS: idle {memory['idle']:.0f} MB, peak {memory['peak']:.0f} MB (+{growth:.0f} MB)")
    print(f"  documented bound on the growth: {bound / MB:.0f} MB ({_verdict(growth <= bound / MB, 'within', 'OVER')})")
    print(
        f"  parse processes: {memory['parse_processes']} seen, peak RSS of the largest "
        f"{memory['parse_peak']:.0f} MB (limit {config.parse_memory_mb} MB of address space)"
    )
    print(f"  job result: {memory['result']}")
    for name, error in sorted(memory["errors"].items()):
        print(f"    {name}: {error or 'stored'}")


def _verdict(ok: bool, yes: str = "met", no: str = "MISSED") -> str:
    return yes if ok else no


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every response")
    parser.add_argument("--concurrency", type=int, help="FEEDS_MAX_CONCURRENCY (default: the setting)")
    parser.add_argument("--hostile", type=int, default=20, help="hostile 10 MB feeds for the memory run (0: skip)")
    parser.add_argument(
        "--gzip-bombs", type=int, default=int(FEED_DEFAULTS["MAX_CONCURRENCY"]), help="gzip bombs at once (0: skip)"
    )
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
