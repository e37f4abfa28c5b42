"""Search benchmark: edit-to-searchable latency, and rebuild throughput and memory.

    uv run python bench/search.py [--saves 200] [--sizes 10000 100000] [--skip-latency] [--skip-rebuild]
                                  [--skip-schedule]

It creates a throwaway PostgreSQL database (django.test.utils.setup_databases, so
``test_<name>`` of BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/bench_search)
and a Redis database of its own (BENCH_REDIS_URL, or a database leased for the run), which must
be empty (it is never flushed unless the bench filled it); the database is dropped at the end.

1. Edit to searchable (database backend): 200 ORM saves, each committed, with a
   ``manage.py runworker`` running; the time until the backend's search finds the new
   text. Baseline in the same run: indexing inline right after the save (no queue).
2. Rebuild of 10,000 and 100,000 documents on the database backend and on the
   Meilisearch stand-in (tests/search/fake_meilisearch.py, in its own process): time,
   documents/s and peak RSS, each run in a fresh process so peak RSS is its own.
   Baseline in the same run: the same rebuild with every document built in memory first
   (what streaming avoids); the ratios printed compare the two.
3. Scheduling a bulk write (a feed import, ``reindex_search --enqueue``): ``schedule_index``
   of 5,000 and 50,000 ids in one transaction, the time to record the jobs (outbox rows)
   and to commit (delivery to Redis). Baseline in the same run: one ``enqueue_on_commit``
   per 500-id job (one outbox INSERT and one Redis round trip each).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import bench_redis_url  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_search")
REDIS_URL = bench_redis_url()  # a Redis database of the bench's own
WORDS = [
    "python",
    "interpreter",
    "module",
    "package",
    "import",
    "generator",
    "iterator",
    "decorator",
    "descriptor",
    "coroutine",
    "asyncio",
    "thread",
    "process",
    "queue",
    "socket",
    "request",
    "response",
    "template",
    "model",
    "view",
    "query",
    "index",
    "search",
    "release",
    "version",
    "feature",
    "bug",
    "fix",
    "performance",
    "memory",
    "garbage",
    "collector",
    "bytecode",
    "compiler",
    "parser",
    "grammar",
    "typing",
    "protocol",
    "dataclass",
    "enum",
    "pathlib",
    "logging",
    "unittest",
    "pytest",
    "packaging",
    "wheel",
    "virtualenv",
    "pip",
]


def configure(database_url: str, backend: str = "database", meilisearch_url: str = "") -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ["SEARCH_BACKEND"] = f"pydotorg.search.backends.{backend}"
    os.environ["MEILISEARCH_URL"] = meilisearch_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "pydotorg.settings"
    os.environ["CONN_MAX_AGE"] = "0"
    import django

    django.setup()
    import logging

    logging.getLogger("pydotorg").setLevel(logging.WARNING)
    logging.getLogger("tasks_app").setLevel(logging.WARNING)


def test_database_url(name: str) -> str:
    return DATABASE_URL.rsplit("/", 1)[0] + "/" + name


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> float:
    """Start peak tracking afresh (Linux: clear_refs 5 resets VmHWM); returns the RSS now."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass  # then the peak also covers start-up, which only makes growth ratios look smaller
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    return _status_mb("VmHWM")


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def make_pages(start: int, count: int) -> None:
    """Pages with ~100-word bodies, written without signals (bulk_create)."""
    from pydotorg.pages.models import Page

    rng = random.Random(start)
    batch = []
    for n in range(start, start + count):
        batch.append(
            Page(
                title=f"Page {n}: {text(rng, 4)}",
                path=f"bench/{n}/",
                description=text(rng, 15),
                content=text(rng, 100),
            )
        )
        if len(batch) == 5000:
            Page.objects.bulk_create(batch)
            batch = []
    Page.objects.bulk_create(batch)


# --- 1. edit to searchable -----------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def wait_searchable(search, token: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not search(token).total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{token} was not searchable after {timeout} s")
        time.sleep(0.002)


def run_with_worker(page, search, saves: int, env: dict, log) -> list[float]:
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "runworker", "--no-reload", "-v", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        page.content = "warm up the worker"
        page.save()
        wait_searchable(search, "warm", timeout=60)
        queued = []
        for n in range(saves):
            token = f"queued{n}x{random.randrange(10**9)}"
            started = time.perf_counter()
            page.content = f"edited {token}"
            page.save()  # autocommit: committed here, so the job leaves for Redis now
            wait_searchable(search, token)
            queued.append((time.perf_counter() - started) * 1000)
        return queued
    except TimeoutError:
        log.seek(0)
        print("Worker log (last 3000 characters):\n" + log.read()[-3000:], file=sys.stderr)
        raise
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def latency(saves: int, test_db_url: str) -> dict[str, float]:
    from asgiref.sync import async_to_sync

    from pydotorg.pages.models import Page
    from pydotorg.search.backends import get_backend
    from pydotorg.search.indexer import index_objects

    search = async_to_sync(get_backend().search)
    page = Page.objects.create(title="Latency probe", path="bench/latency/", content="start")

    # Baseline: the index work alone, inline after the save (no outbox, Redis or worker).
    inline = []
    for n in range(saves):
        token = f"inline{n}x{random.randrange(10**9)}"
        started = time.perf_counter()
        page.content = f"edited {token}"
        page.save()
        async_to_sync(index_objects)("page", [page.pk])
        wait_searchable(search, token)
        inline.append((time.perf_counter() - started) * 1000)

    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()  # our own (checked empty at start): drop the baseline's jobs
    env = {**os.environ, "DATABASE_URL": test_db_url, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile(mode="w+") as log:  # the worker's log, shown only if it fails
        queued = run_with_worker(page, search, saves, env, log)
    return {
        "p50": statistics.median(queued),
        "p95": percentile(queued, 95),
        "max": max(queued),
        "inline_p50": statistics.median(inline),
        "inline_p95": percentile(inline, 95),
    }


# --- 3. scheduling a bulk write ---------------------------------------------------


def schedule_bulk(count: int, bulk: bool) -> dict[str, float]:
    """Seconds to record ``count`` ids' batch jobs in a transaction, and to commit (deliver) them."""
    from itertools import batched

    import redis
    from django.db import transaction

    from pydotorg.search.indexer import BATCH_SIZE
    from pydotorg.search.scheduling import schedule_index
    from tasks_app import enqueue_on_commit
    from tasks_app.models import OutboxEntry

    ids = range(1, count + 1)
    started = time.perf_counter()
    with transaction.atomic():
        if bulk:
            schedule_index("blog", ids)
        else:
            for chunk in batched(ids, BATCH_SIZE):
                enqueue_on_commit("index_content_batch", content_type="blog", ids=list(chunk))
        recorded = time.perf_counter()
    committed = time.perf_counter()
    connection = redis.Redis.from_url(REDIS_URL)
    jobs = connection.llen("saq:default:queued")
    if jobs != -(-count // BATCH_SIZE) or OutboxEntry.objects.exists():
        raise RuntimeError(f"{jobs} jobs reached Redis for {count} ids; the outbox still holds some")
    connection.flushdb()  # our own Redis database (checked empty at start): drop these jobs
    return {"record": recorded - started, "commit": committed - recorded}


def scheduling(counts: list[int]) -> None:
    print(
        "Scheduling a bulk write (index_content_batch jobs of 500 ids; record in the transaction, deliver on commit):"
    )
    for count in counts:
        schedule_bulk(count, bulk=True)  # warm up connections and the queue's scripts
        bulk, baseline = schedule_bulk(count, bulk=True), schedule_bulk(count, bulk=False)
        total = {name: r["record"] + r["commit"] for name, r in (("bulk", bulk), ("baseline", baseline))}
        print(
            f"  {count:>7,} ids, bulk (schedule_index):         record {bulk['record'] * 1000:7.1f} ms, "
            f"commit {bulk['commit'] * 1000:7.1f} ms\n"
            f"  {count:>7,} ids, baseline (one job at a time): record {baseline['record'] * 1000:7.1f} ms, "
            f"commit {baseline['commit'] * 1000:7.1f} ms  (baseline/bulk: {total['baseline'] / total['bulk']:.1f}x)"
        )
    print()


# --- 2. rebuild ----------------------------------------------------------------


def child_rebuild(backend: str, meilisearch_url: str, database_url: str, naive: bool) -> None:
    """Runs in its own process; prints one JSON line."""
    configure(database_url, backend, meilisearch_url)
    from asgiref.sync import async_to_sync, sync_to_async

    from pydotorg.search import documents, rebuild
    from pydotorg.search.backends import get_backend

    backend_obj = get_backend()
    before = reset_peak_rss()
    started = time.perf_counter()
    if naive:

        async def everything_in_memory() -> int:
            docs = []
            for content_type in documents.TYPES:
                after = 0
                while True:
                    chunk, last = await sync_to_async(documents.chunk_after)(content_type, after, 5000)
                    if not chunk:
                        break
                    docs.extend(chunk)
                    after = last
            building = await backend_obj.start_rebuild()
            for start in range(0, len(docs), rebuild.CHUNK_SIZE):
                await building.add(docs[start : start + rebuild.CHUNK_SIZE])
            await building.commit()
            return len(docs)

        total = async_to_sync(everything_in_memory)()
    else:
        result = async_to_sync(rebuild.rebuild_index)(backend_obj)
        total = sum(result["documents"].values())
    seconds = time.perf_counter() - started
    print(json.dumps({"docs": total, "seconds": seconds, "rss_start": before, "rss_peak": peak_rss_mb()}))


def run_child(backend: str, meilisearch_url: str, database_url: str, naive: bool) -> dict:
    args = [sys.executable, __file__, "--child", backend, "--meilisearch-url", meilisearch_url, "--db", database_url]
    if naive:
        args.append("--naive")
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"rebuild child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_stand_in() -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/search/fake_meilisearch.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    process.stdout.readline()  # "listening on ..."
    return process, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-rebuild", action="store_true")
    parser.add_argument("--skip-schedule", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--meilisearch-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_rebuild(args.child, args.meilisearch_url, args.db, args.naive)

    configure(DATABASE_URL)
    from django.db import connection

    from bench.support import throwaway_databases

    with throwaway_databases(REDIS_URL):
        test_db_url = test_database_url(connection.settings_dict["NAME"])
        print(f"Throwaway database {connection.settings_dict['NAME']}, Redis {REDIS_URL}\n")
        if not args.skip_latency:
            figures = latency(args.saves, test_db_url)
            print(f"Edit to searchable, database backend, {args.saves} saves with a running worker:")
            print(
                f"  queued (outbox -> Redis -> runworker): p50 {figures['p50']:.1f} ms, "
                f"p95 {figures['p95']:.1f} ms, max {figures['max']:.1f} ms  (target p95 <= 300 ms: "
                f"{'met' if figures['p95'] <= 300 else 'MISSED'})"
            )
            print(
                f"  baseline, inline indexing, no queue:   p50 {figures['inline_p50']:.1f} ms, "
                f"p95 {figures['inline_p95']:.1f} ms"
            )
            print(f"  ratio queued/inline p95: {figures['p95'] / figures['inline_p95']:.1f}x\n")
        if not args.skip_schedule:
            scheduling([5_000, 50_000])
        if not args.skip_rebuild:
            rebuilds(args.sizes, test_db_url)


def rebuilds(sizes: list[int], test_db_url: str) -> None:
    from pydotorg.pages.models import Page

    stand_in, stand_in_url = start_stand_in()
    results: dict[tuple[str, str, int], dict] = {}
    try:
        for size in sorted(sizes):
            have = Page.objects.count()
            make_pages(have, size - have)
            print(f"Rebuild of {size:,} documents:")
            for backend, url in (("database", ""), ("meilisearch", stand_in_url)):
                for mode in ("streamed", "in-memory baseline"):
                    r = run_child(backend, url, test_db_url, naive=mode != "streamed")
                    results[(backend, mode, size)] = r
                    label = "database" if backend == "database" else "stand-in"
                    print(
                        f"  {label:<9} {mode:<19} {r['seconds']:7.2f} s  {r['docs'] / r['seconds']:9,.0f} docs/s  "
                        f"peak RSS {r['rss_peak']:6.0f} MB (RSS before the rebuild {r['rss_start']:.0f} MB)"
                    )
            print()
    finally:
        stand_in.terminate()
        stand_in.wait(timeout=30)
    if len(sizes) >= 2:
        small, large = min(sizes), max(sizes)
        print(f"Peak RSS growth {small:,} -> {large:,} documents (target <= 1.5x for the streamed rebuild):")
        for backend in ("database", "meilisearch"):
            label = "database" if backend == "database" else "stand-in"
            streamed = (
                results[(backend, "streamed", large)]["rss_peak"] / results[(backend, "streamed", small)]["rss_peak"]
            )
            naive = (
                results[(backend, "in-memory baseline", large)]["rss_peak"]
                / results[(backend, "in-memory baseline", small)]["rss_peak"]
            )
            print(
                f"  {label:<9} streamed {streamed:.2f}x ({'met' if streamed <= 1.5 else 'MISSED'}), "
                f"in-memory baseline {naive:.2f}x"
            )
        print(f"Time at {large:,} documents, streamed / in-memory baseline:")
        for backend in ("database", "meilisearch"):
            label = "database" if backend == "database" else "stand-in"
            streamed, naive = results[(backend, "streamed", large)], results[(backend, "in-memory baseline", large)]
            print(f"  {label:<9} {streamed['seconds'] / naive['seconds']:.2f}x")
        db = results[("database", "streamed", large)]
        rate = db["docs"] / db["seconds"]
        print(
            f"Database backend throughput at {large:,}: {rate:,.0f} docs/s "
            f"(target >= 5,000: {'met' if rate >= 5000 else 'MISSED'})"
        )


if __name__ == "__main__":
    main()
