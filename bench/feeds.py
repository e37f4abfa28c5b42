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

Targets: 2 within 1.3x of 4 and at least 8x faster than 1; 3 at least 10x faster than 2.

It uses tests.settings with a throwaway PostgreSQL database (django.test.utils.setup_databases:
``test_<name>`` of BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/bench_feeds),
dropped at the end, and a Redis database of its own for the jobs (BENCH_REDIS_URL, default
or a database leased for the run), which must be empty and is flushed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import bench_redis_url  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_feeds")
REDIS_URL = bench_redis_url()  # a Redis database of the bench's own
SPEEDUP_TARGET = 8.0
FLOOR_TARGET = 1.3
RERUN_TARGET = 10.0
HOSTILE_KINDS = ("style", "comment", "tags", "items")
MB = 1024 * 1024


def host(index: int) -> str:
    """The loopback address standing for feed ``index``'s own server."""
    return f"127.0.{index // 250}.{index % 250 + 1}"


# --- the feed server (runs in its own process: `bench/feeds.py --serve ...`) ---------------


def feed_document(index: int, entries: int) -> bytes:
    items = []
    for n in range(entries):
        paragraph = f"Entry {n} of feed {index}, about Python packaging, typing and asyncio. " * 6
        items.append(
            f"<item><title>Feed {index}: post {n} about Python</title>"
            f"<link>https://blog{index}.example.org/posts/{n}</link>"
            f"<guid>https://blog{index}.example.org/posts/{n}</guid>"
            f"<pubDate>Mon, 06 Sep 2021 {n % 24:02d}:{n % 60:02d}:00 +0000</pubDate>"
            f"<description>&lt;p&gt;{paragraph}&lt;a href='https://www.python.org/'&gt;link&lt;/a&gt;&lt;/p&gt;"
            f"</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Blog {index}</title><link>https://blog{index}.example.org/</link>{''.join(items)}"
        "</channel></rss>"
    ).encode()


async def serve(args: argparse.Namespace) -> None:
    from tests.blogs.hostile import hostile

    documents = {f"/feed/{i}": feed_document(i, args.entries) for i in range(args.feeds)}
    bombs = {kind: hostile(kind, 10 * MB) for kind in HOSTILE_KINDS} if args.hostile else {}
    for i in range(args.hostile):
        documents[f"/hostile/{i}"] = bombs[HOSTILE_KINDS[i % len(HOSTILE_KINDS)]]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: one request after another on this connection
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                await asyncio.sleep(args.latency)
                body = documents.get(path)
                etag = f'"{path}"'
                if body is None:
                    status, body, extra = "404 Not Found", b"", ""
                elif headers.get("if-none-match") == etag:
                    status, body, extra = "304 Not Modified", b"", f"ETag: {etag}\r\n"
                else:
                    status, extra = "200 OK", f"ETag: {etag}\r\nContent-Type: application/rss+xml; charset=utf-8\r\n"
                writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode("latin-1"))
                writer.write(body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    hosts = [host(i) for i in range(max(args.feeds, args.hostile))]
    with socket.socket() as probe:  # one port for every address
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = await asyncio.start_server(handle, hosts, port, backlog=1024)
    print(port, flush=True)
    async with server:
        await server.serve_forever()


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, int]:
    command = [sys.executable, __file__, "--serve", "--feeds", str(args.feeds), "--entries", str(args.entries)]
    command += ["--latency", str(args.latency), "--hostile", str(args.hostile)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    return process, int(process.stdout.readline())


# --- the benchmark ---------------------------------------------------------------------------


def setup_django(concurrency: int | None):
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["TEST_DATABASE_URL"] = DATABASE_URL
    os.environ["TEST_REDIS_URL"] = REDIS_URL
    import django
    from django.conf import settings

    django.setup()
    settings.FEEDS_ALLOW_PRIVATE_NETWORKS = True  # the feed servers are on loopback
    if concurrency:
        settings.FEEDS_MAX_CONCURRENCY = concurrency


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


def hostile_run(args: argparse.Namespace, port: int) -> dict[str, float]:
    """Refresh ``--hostile`` 10 MB hostile feeds with a real worker; its RSS and the parse processes', in MB."""
    from django.db import connection

    from pydotorg.blogs.models import Feed
    from tasks_app import enqueue
    from tasks_app.enqueueing.connections import background, get_queue
    from tests.blogs.processes import descendants, memory_kb

    async def stored_job(key: str):
        return await get_queue().job(key)

    print(f"{args.hostile} hostile feeds through a worker...", file=sys.stderr)
    Feed.objects.bulk_create(
        Feed(name=f"Hostile {i}", feed_url=f"http://{host(i)}:{port}/hostile/{i}") for i in range(args.hostile)
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
        "errors": dict(Feed.objects.filter(name__startswith="Hostile").values_list("name", "last_error")),
    }


def run(args: argparse.Namespace) -> int:
    setup_django(args.concurrency)
    from django.conf import settings

    from bench.support import throwaway_databases
    from pydotorg.blogs.conf import cpu_count, feed_settings, worker_memory_bound
    from tasks_app.enqueueing.connections import background, disconnect_all

    with throwaway_databases(REDIS_URL):
        server, port = start_server(args)
        try:
            times = asyncio.run(measure(args, port))
            memory = hostile_run(args, port) if args.hostile else None
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
    latency_floor = args.feeds / settings.FEEDS_MAX_CONCURRENCY * args.latency
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
        bound = worker_memory_bound(config) / MB
        print(
            f"Hostile: {args.hostile} feeds of 10 MB ({', '.join(HOSTILE_KINDS)}), one host each, refreshed by "
            f"runworker in {memory['seconds']:.1f} s; FEEDS_PARSE_CPU_SECONDS={config.parse_cpu_seconds}, "
            f"FEEDS_PARSE_MEMORY_MB={config.parse_memory_mb}"
        )
        growth = memory["peak"] - memory["idle"]
        print(f"  worker RSS: idle {memory['idle']:.0f} MB, peak {memory['peak']:.0f} MB (+{growth:.0f} MB)")
        print(f"  documented bound on the growth: {bound:.0f} MB ({_verdict(growth <= bound, 'within', 'OVER')})")
        print(
            f"  parse processes: {memory['parse_processes']} seen, peak RSS of the largest "
            f"{memory['parse_peak']:.0f} MB (limit {config.parse_memory_mb} MB of address space)"
        )
        print(f"  job result: {memory['result']}")
        for name, error in sorted(memory["errors"].items()):
            print(f"    {name}: {error or 'stored'}")
    return 0


def _verdict(ok: bool, yes: str = "met", no: str = "MISSED") -> str:
    return yes if ok else no


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every response")
    parser.add_argument("--concurrency", type=int, help="FEEDS_MAX_CONCURRENCY (default: the setting)")
    parser.add_argument("--hostile", type=int, default=20, help="hostile 10 MB feeds for the memory run (0: skip)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
