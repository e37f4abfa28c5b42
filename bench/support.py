"""What every bench/ script needs: a throwaway PostgreSQL database, and a Redis database of its own.

Django must be set up before ``throwaway_databases`` is entered.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis


def start_own_redis_server(name: str):
    """A redis-server of the benchmark's own (no persistence, a temporary directory), its URL exported as
    ``BENCH_REDIS_URL``: call it before ``django.setup()``, which reads that. Its CPU and its slow log are
    the benchmark's alone. Returns the ``tests.redis_server.RedisServer``; stop it at the end."""
    from tests.redis_server import RedisServer

    directory = tempfile.mkdtemp(prefix=f"{name}-redis-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    server = RedisServer(Path(directory), persistent=False).start()
    os.environ["BENCH_REDIS_URL"] = server.url
    return server


def bench_redis_url() -> str:
    """``BENCH_REDIS_URL``, or a Redis database leased like a test run's (``tests/redis_lease.py``);
    exported as ``BENCH_REDIS_URL`` so that the processes the bench starts use it too."""
    from tests.redis_lease import leased_redis_url

    url = os.environ.get("BENCH_REDIS_URL") or leased_redis_url()
    os.environ["BENCH_REDIS_URL"] = url
    return url


@contextmanager
def own_redis(redis_url: str) -> Iterator[redis.Redis]:
    """A client of ``redis_url``, which must be empty (else exit: someone may be using it); emptied afterwards."""
    client = redis.Redis.from_url(redis_url)
    if client.dbsize():
        sys.exit(
            f"{redis_url} is not empty: someone may be using it. Point BENCH_REDIS_URL at an empty Redis database."
        )
    try:
        yield client
    finally:
        client.flushdb()  # it was empty when we started: everything in it is ours
        client.close()


@contextmanager
def throwaway_databases(redis_url: str) -> Iterator[redis.Redis]:
    """Create ``test_<name>`` of the configured database and check that ``redis_url`` is unused;
    drop the database and empty the Redis database afterwards."""
    from django.db import connections
    from django.test.utils import setup_databases, teardown_databases

    with own_redis(redis_url) as client:
        old_config = setup_databases(verbosity=0, interactive=False)
        try:
            yield client
        finally:
            connections.close_all()
            teardown_databases(old_config, verbosity=0)


def worker_env(concurrency: int, redis_url: str) -> dict:
    """The environment of a ``runworker`` the benches spawn: bench settings, this process's database, the
    bench's Redis and ``concurrency`` slots."""
    from django.db import connection

    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "TEST_DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "BENCH_REDIS_URL": redis_url,
        "BENCH_CONCURRENCY": str(concurrency),
    }


def job_span(redis_url: str, count: int) -> float:
    """Seconds from the first job's start to the last job's completion, read from the Redis database at
    ``redis_url``, which must hold ``count`` jobs of queue ``default``, every one complete (else AssertionError)."""
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter("saq:job:default:*", count=1000))
    assert len(keys) == count, f"expected {count} jobs, found {len(keys)}"
    started, completed = [], []
    for start in range(0, len(keys), 1000):
        for raw in client.mget(keys[start : start + 1000]):
            job = json.loads(raw)
            assert job["status"] == "complete", job
            started.append(job["started"])
            completed.append(job["completed"])
    client.close()
    return (max(completed) - min(started)) / 1000
