import asyncio
import contextlib

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
    """Until ``clients`` clients on ``redis``'s database wait in a blocking command (a worker's BLMOVE),
    polled every 10 ms (at most 10 s). Of this database only: another test run may share the server."""
    db = redis.connection_pool.connection_kwargs.get("db", 0)
    for _ in range(1000):
        if sum(int(c["db"]) == db and "b" in c["flags"] for c in await redis.client_list()) >= clients:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {clients} client(s) blocked within 10 s")


async def subscribed(queue) -> None:
    """Until the queue's own ``listen`` multiplexer holds its pattern subscription on Redis (it subscribes from
    a task of its own), polled every 10 ms (at most 10 s). The connection is known by the queue's client
    name (``queue_opener``): an earlier queue's, still closing, may hold one too."""
    name = queue.redis.connection_pool.connection_kwargs["client_name"]
    for _ in range(1000):
        if any(c["name"] == name and int(c["psub"]) for c in await queue.redis.client_list()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the queue's pattern subscription did not reach Redis within 10 s")


@contextlib.asynccontextmanager
async def watching(queue):
    """Yields a list that fills, until the block ends, with the commands scripts ran on the queue's database."""
    seen: list[str] = []
    db = queue.redis.connection_pool.connection_kwargs.get("db", 0)
    async with queue.redis.monitor() as monitor:

        async def listen():
            while True:
                command = await monitor.next_command()
                if command.get("client_type") == "lua" and int(command.get("db", -1)) == db:
                    seen.append(command["command"])

        listening = asyncio.create_task(listen())
        await queue.redis.ping()  # MONITOR is on before the block's first command
        try:
            yield seen
        finally:
            await queue.redis.set("tasks-app-test:monitor-end", "1")
            await asyncio.sleep(0.2)  # the last script's commands reach the monitor
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
