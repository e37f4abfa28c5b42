"""Feed refresh benchmark: concurrent refresh vs one feed after another, and the all-304 rerun.

    uv run python bench/feeds.py [--feeds 200] [--entries 50] [--latency 0.1] [--concurrency N]

Workload: ``--feeds`` RSS feeds of ``--entries`` entries each (about 700 bytes per entry),
served by an HTTP server on loopback in its own process that waits ``--latency`` seconds
before every response and answers ``If-None-Match`` with 304.

In one run, on the same feeds and the same database:

1. Sequential baseline, as the original did: one feed after another, fetch, then parse
   (inline), then store, with no concurrency. Same fetch/parse/store code as the tasks.
2. ``refresh_all_feeds`` (entries emptied first, so it does the same work as 1).
3. ``refresh_all_feeds`` again: every feed answers 304.

Targets: 2 at least 10x faster than 1; 3 at least 10x faster than 2.

It uses tests.settings with a throwaway PostgreSQL database (django.test.utils.setup_databases:
``test_<name>`` of BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/bench_feeds),
dropped at the end, and a Redis database of its own for the search-indexing jobs a refresh
schedules (BENCH_REDIS_URL, default redis://127.0.0.1:6379/13), which must be empty and is
flushed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_feeds")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
TARGET = 10.0


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


async def serve(feeds: int, entries: int, latency: float) -> None:
    documents = {f"/feed/{i}": feed_document(i, entries) for i in range(feeds)}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: one request after another on this connection
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                await asyncio.sleep(latency)
                body = documents.get(path)
                etag = f'"{path}"'
                if body is None:
                    status, body, extra = "404 Not Found", b"", ""
                elif headers.get("if-none-match") == etag:
                    status, body, extra = "304 Not Modified", b"", f"ETag: {etag}\r\n"
                else:
                    status, extra = "200 OK", f"ETag: {etag}\r\nContent-Type: application/rss+xml; charset=utf-8\r\n"
                writer.write(
                    f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def start_server(feeds: int, entries: int, latency: float) -> tuple[subprocess.Popen, int]:
    command = [sys.executable, __file__, "--serve", "--feeds", str(feeds), "--entries", str(entries)]
    process = subprocess.Popen([*command, "--latency", str(latency)], stdout=subprocess.PIPE, text=True)
    return process, int(process.stdout.readline())


# --- the benchmark ---------------------------------------------------------------------------


def setup_django(concurrency: int | None):
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["TEST_DATABASE_URL"] = DATABASE_URL
    os.environ["TEST_REDIS_URL"] = REDIS_URL
    import django
    from django.conf import settings

    django.setup()
    if concurrency:
        settings.FEEDS_MAX_CONCURRENCY = concurrency


async def sequential(feeds) -> dict[str, float]:
    """The original's shape: for each feed, fetch, parse (blocking, inline), store; no overlap.

    Returns the seconds spent in each phase, summed over the feeds.
    """
    from asgiref.sync import sync_to_async
    from django.utils import timezone

    from pydotorg.blogs.conf import feed_settings
    from pydotorg.blogs.fetching import build_client, fetch
    from pydotorg.blogs.parsing import parse_feed
    from pydotorg.blogs.storing import entry_limits, save_fetch

    config = feed_settings()
    phases = {"fetch": 0.0, "parse": 0.0, "store": 0.0}
    async with build_client(config) as client:
        for feed in feeds:
            started = time.perf_counter()
            fetched = await fetch(client, feed.feed_url, config)
            fetched_at = time.perf_counter()
            parsed = parse_feed(fetched.content, fetched.headers, fetched.url, entry_limits())
            parsed_at = time.perf_counter()
            await sync_to_async(save_fetch)(feed, fetched, parsed.entries, timezone.now())
            phases["fetch"] += fetched_at - started
            phases["parse"] += parsed_at - fetched_at
            phases["store"] += time.perf_counter() - parsed_at
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
            Feed(name=f"Blog {i}", feed_url=f"http://127.0.0.1:{port}/feed/{i}") for i in range(args.feeds)
        )
        return list(Feed.objects.order_by("pk"))

    try:
        feeds = await sync_to_async(create_feeds)()
        await sequential(feeds[:1])  # warm-up (imports, connections), not timed
        await sync_to_async(reset)()

        started = time.perf_counter()
        phases = await sequential(feeds)
        baseline = time.perf_counter() - started
        assert await BlogEntry.objects.acount() == args.feeds * args.entries
        await sync_to_async(reset)()

        started = time.perf_counter()
        first = await refresh_all_feeds({})
        concurrent = time.perf_counter() - started
        assert first["entries_created"] == args.feeds * args.entries and first["feeds_failed"] == 0, first

        started = time.perf_counter()
        second = await refresh_all_feeds({})
        unchanged = time.perf_counter() - started
        assert second["feeds_unchanged"] == args.feeds and second["entries_created"] == 0, second
    finally:
        await sync_to_async(connections.close_all)()  # the ORM's thread holds the connection
    per_feed = {f"{name}_ms": seconds / args.feeds * 1000 for name, seconds in phases.items()}
    return {"baseline": baseline, "concurrent": concurrent, "unchanged": unchanged, **per_feed}


def run(args: argparse.Namespace) -> int:
    setup_django(args.concurrency)
    from django.conf import settings

    from bench.support import throwaway_databases
    from tasks_app.enqueueing.connections import background, disconnect_all

    with throwaway_databases(REDIS_URL):
        server, port = start_server(args.feeds, args.entries, args.latency)
        try:
            times = asyncio.run(measure(args, port))
        finally:
            server.kill()
            background.run(disconnect_all())

    concurrency = settings.FEEDS_MAX_CONCURRENCY
    speedup = times["baseline"] / times["concurrent"]
    rerun = times["concurrent"] / times["unchanged"]
    print(
        f"Workload: {args.feeds} feeds x {args.entries} entries, {args.latency * 1000:.0f} ms added latency "
        f"per response, FEEDS_MAX_CONCURRENCY={concurrency}, {os.cpu_count()} CPU(s)"
    )
    print(f"  sequential baseline (fetch, parse, store; one at a time): {times['baseline']:7.2f} s")
    print(f"  refresh_all_feeds, first run (all new):                    {times['concurrent']:7.2f} s")
    print(f"  refresh_all_feeds, second run (every feed 304):            {times['unchanged']:7.2f} s")
    print(f"  latency floor of a run: {args.feeds / concurrency * args.latency:.2f} s (feeds / concurrency x latency)")
    work = times["parse_ms"] + times["store_ms"]
    print(
        f"  per feed in the baseline: fetch {times['fetch_ms']:.1f} ms, parse {times['parse_ms']:.1f} ms, "
        f"store {times['store_ms']:.1f} ms"
    )
    work_total = work * args.feeds / 1000
    print(
        f"  parse + store is mostly Python work ({work:.0f} ms a feed, {work_total:.1f} s in all) that threads "
        f"cannot overlap (GIL), so one process tops out near {times['baseline'] / work_total:.1f}x"
    )
    print(f"  speed-up over sequential: {speedup:5.1f}x  (target >= {TARGET:g}x: {_verdict(speedup)})")
    print(f"  first run / all-304 run:  {rerun:5.1f}x  (target >= {TARGET:g}x: {_verdict(rerun)})")
    return 0


def _verdict(ratio: float) -> str:
    return "met" if ratio >= TARGET else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every response")
    parser.add_argument("--concurrency", type=int, help="FEEDS_MAX_CONCURRENCY (default: the setting)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.feeds, args.entries, args.latency))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
