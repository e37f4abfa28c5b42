import asyncio
import contextlib

import pytest
from django.conf import settings
from redis.asyncio import from_url

from tasks_app.engine.queue import AtomicRedisQueue


@pytest.fixture
def open_queue(redis_db):
    """An async context manager giving an AtomicRedisQueue on the tests' own (empty) Redis database."""
    url = settings.SAQ["QUEUES"]["default"]["URL"]

    @contextlib.asynccontextmanager
    async def opened(name: str = "default"):
        queue = AtomicRedisQueue(from_url(url), name=name)
        await queue.connect()
        try:
            yield queue
        finally:
            await queue.disconnect()

    return opened


def run(coro):
    return asyncio.run(coro)
