"""Huge documents against search: query time with the text cap and bounded highlighting, and without.

    uv run python bench/big_documents.py [--documents 7] [--megabytes 5] [--parallel 16] [--rounds 5]

Seven blog entries of about 5 MB each, mostly the one-letter word "w" (so they stay indexable
even uncapped), are indexed on the database backend in a throwaway PostgreSQL database
(``test_<name>`` of BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/bench_big_documents,
dropped at the end). Then ``q=w`` is searched ``--rounds`` times one at a time, and once from 16
threads at once (each its own connection, as 16 parallel requests would be); the median and
worst times are printed.

Baseline in the same run: the same code without its two bounds, i.e. the entries indexed whole
(no 100,000-character cap) and highlighted whole (no 20,000-character prefix). The site before
the bounds used ts_headline's fragment mode, which costs less than marking every match of a
whole text but grows with it the same way (the issue measured 1.4 s alone, 11 s at 16 at once).
No Redis is needed: the entries are written without signals and indexed in this process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["TEST_DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_big_documents"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def entry_html(n: int, megabytes: float) -> str:
    words = int(megabytes * 1_000_000 / 2)
    return f"<p>Entry {n} opens with some words. " + "w " * words + f"and closes with number{n}.</p>"


def timed_search(query: str) -> float:
    from django.db import connection

    from pydotorg.search.backends.database import _search

    started = time.perf_counter()
    found = _search(query, None, 20, 0)
    elapsed = time.perf_counter() - started
    connection.close()
    assert found.total > 0, "nothing found: the bench is broken"
    return elapsed


def measure(label: str, rounds: int, parallel: int) -> None:
    alone = [timed_search("w") for _ in range(rounds)]
    with ThreadPoolExecutor(parallel) as pool:
        crowded = list(pool.map(lambda _: timed_search("w"), range(parallel)))
    print(
        f"{label:<32} alone: median {statistics.median(alone) * 1000:8.1f} ms, worst {max(alone) * 1000:8.1f} ms | "
        f"{parallel} at once: median {statistics.median(crowded) * 1000:8.1f} ms, worst {max(crowded) * 1000:8.1f} ms"
    )


@contextmanager
def unbounded():
    """The site before the bounds: whole documents indexed and highlighted."""
    from pydotorg.search import documents
    from pydotorg.search.backends import database

    with mock.patch.object(documents, "MAX_TEXT", 10**9), mock.patch.object(database, "HIGHLIGHT_CHARS", 10**9):
        yield


def index_all(ids: list[int]) -> float:
    from asgiref.sync import async_to_sync

    from pydotorg.search.indexer import index_objects
    from pydotorg.search.models import SearchDocument

    SearchDocument.objects.all().delete()
    started = time.perf_counter()
    for pk in ids:  # one at a time: uncapped, a batch of several would be one enormous statement
        async_to_sync(index_objects)("blog", [pk])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=7)
    parser.add_argument("--megabytes", type=float, default=5.0)
    parser.add_argument("--parallel", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import logging

    import django

    django.setup()
    logging.getLogger("pydotorg.search").setLevel(logging.WARNING)  # not a line per indexed entry
    from django.db import connections
    from django.test.utils import setup_databases, teardown_databases
    from django.utils import timezone

    from pydotorg.blogs.models import BlogEntry, Feed

    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        feed = Feed.objects.create(name="Huge", feed_url="https://huge.example/feed")
        entries = BlogEntry.objects.bulk_create(
            BlogEntry(feed=feed, guid=str(n), title=f"Huge {n}", pub_date=timezone.now(),
                      content=entry_html(n, args.megabytes))
            for n in range(args.documents)
        )  # fmt: skip
        ids = [entry.pk for entry in entries]
        print(f"{args.documents} entries of {args.megabytes} MB; q=w; {args.rounds} rounds; 2 cores, shared machine")

        with unbounded():
            seconds = index_all(ids)
            print(f"{'baseline (whole text)':<32} indexed in {seconds:.1f} s")
            measure("baseline (whole text)", args.rounds, args.parallel)
        seconds = index_all(ids)
        print(f"{'capped + bounded highlighting':<32} indexed in {seconds:.1f} s")
        measure("capped + bounded highlighting", args.rounds, args.parallel)
    finally:
        connections.close_all()
        teardown_databases(old_config, verbosity=0)


if __name__ == "__main__":
    main()
