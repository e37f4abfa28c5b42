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
   Meilisearch stand-in (tests/search/fake_meilisearch/, in its own process): time,
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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.search_latency import latency
from bench.search_rebuild import child_rebuild, rebuilds
from bench.search_scheduling import scheduling
from bench.search_setup import DATABASE_URL, REDIS_URL, configure, test_database_url


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


if __name__ == "__main__":
    main()
