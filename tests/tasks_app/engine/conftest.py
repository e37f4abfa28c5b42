import asyncio

import pytest
from django.conf import settings

from ..helpers import queue_opener


@pytest.fixture
def open_queue(redis_db):
    """An async context manager giving an AtomicRedisQueue on the tests' own (empty) Redis database."""
    return queue_opener(settings.SAQ["QUEUES"]["default"]["URL"])


def run(coro):
    return asyncio.run(coro)


async def blocked(redis, clients: int = 1) -> None:
    """Until Redis reports ``clients`` clients blocked (a worker's BLMOVE), polled every 10 ms (at most 10 s)."""
    for _ in range(1000):
        if (await redis.info("clients"))["blocked_clients"] >= clients:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {clients} client(s) blocked within 10 s")
