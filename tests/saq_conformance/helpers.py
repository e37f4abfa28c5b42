"""SAQ's ``tests/helpers.py``, written for this project: SAQ's own tests build tasks_app's queue.

``run.py`` copies this file next to the tests of SAQ's published sdist. Each queue gets a
Redis database leased for this run (``tests/redis_lease.py``), emptied before and after.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import typing as t
from pathlib import Path

from redis.asyncio import from_url
from saq.errors import InvalidUrlError

PROJECT_ROOT = Path(os.environ["PROJECT_ROOT"])
sys.path.append(str(PROJECT_ROOT))  # after SAQ's own folder: its ``tests`` package wins that name

from tasks_app.engine.queue import AtomicRedisQueue  # noqa: E402


def _lease() -> str:
    spec = importlib.util.spec_from_file_location("redis_lease", PROJECT_ROOT / "tests" / "redis_lease.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Kept in sys.modules: the lease is a connection that module holds, and lasts as long as it lives.
    sys.modules["redis_lease"] = module
    return module.leased_redis_url()


URL = _lease()


async def create_redis_queue(url: str = URL, **kwargs: t.Any) -> AtomicRedisQueue:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise InvalidUrlError(f"Invalid url: {url}")
    queue = AtomicRedisQueue(from_url(url if url.count("/") > 2 else URL), **kwargs)
    await queue.connect()
    await queue.redis.flushdb()
    return queue


async def cleanup_queue(queue: AtomicRedisQueue) -> None:
    await queue.redis.flushdb()
    await queue.disconnect()


# SAQ's Postgres tests import these; run.py deselects them (this project's queue is the Redis one).
async def create_postgres_queue(**kwargs: t.Any):
    raise NotImplementedError("tasks_app's queue is Redis only")


async def setup_postgres() -> None:
    raise NotImplementedError("tasks_app's queue is Redis only")


async def teardown_postgres() -> None:
    return None
