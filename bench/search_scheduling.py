"""Part 3 of ``bench/search.py``: scheduling a bulk write, ``schedule_index`` against one
``enqueue_on_commit`` per batch (the baseline); times in s, printed in ms."""

from __future__ import annotations

import time

from bench.search_setup import REDIS_URL


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
