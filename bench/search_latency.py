"""Part 1 of ``bench/search.py``: edit to searchable, ORM saves with a running ``runworker`` against
indexing inline after the save (the baseline); times in ms."""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

from bench.search_setup import REDIS_URL, ROOT


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
