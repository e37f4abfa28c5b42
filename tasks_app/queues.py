"""SAQ queues for the running event loop, and a private loop for sync callers.

A redis.asyncio connection belongs to the loop that opened it, so queues are
cached per loop. Sync code (views, signal handlers, management commands)
submits work to one long-lived background loop instead of opening a new
connection, and a new loop, on every call.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from saq import Queue
from saq.queue.redis import RedisQueue

from . import conf

logger = logging.getLogger("tasks_app.queues")

T = TypeVar("T")

_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Queue]] = weakref.WeakKeyDictionary()


class DjangoRedisQueue(RedisQueue):
    """SAQ's Redis queue, patient while Redis is away.

    SAQ's worker retries a failed dequeue at once, in a tight loop; here a lost
    connection is logged once and retried with backoff until Redis is back.
    """

    _outage_started: float | None = None

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0):  # noqa: ASYNC109 (SAQ's signature)
        try:
            job = await super().dequeue(timeout, poll_interval)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            if self._outage_started is None:
                self._outage_started = time.monotonic()
                logger.error("Lost Redis for queue %r (%s); retrying until it is back.", self.name, exc)
            outage = time.monotonic() - self._outage_started
            await asyncio.sleep(min(5.0, 0.25 + outage / 4))
            return None
        if self._outage_started is not None:
            logger.warning(
                "Redis is back for queue %r after %.1fs.", self.name, time.monotonic() - self._outage_started
            )
            self._outage_started = None
        return job


def make_queue(name: str) -> Queue:
    config = conf.queue_config(name)
    return DjangoRedisQueue.from_url(config.url, name=name)


def get_queue(name: str = conf.DEFAULT_QUEUE) -> Queue:
    """The queue called ``name`` for the running event loop, created on first use."""
    loop = asyncio.get_running_loop()
    queues = _per_loop.setdefault(loop, {})
    if name not in queues:
        queues[name] = make_queue(name)
    return queues[name]


def adopt_queue(queue: Queue) -> None:
    """Let ``get_queue`` hand out a queue the worker already owns on this loop."""
    _per_loop.setdefault(asyncio.get_running_loop(), {})[queue.name] = queue


async def disconnect_all() -> None:
    loop = asyncio.get_running_loop()
    for queue in _per_loop.pop(loop, {}).values():
        try:
            await queue.disconnect()
        except Exception:  # already closed (e.g. by SAQ's web app), or Redis is gone
            logger.debug("Queue %r was already disconnected", queue.name)


class _BackgroundLoop:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        import os

        with self._lock:
            # A forked child must not share its parent's loop thread or sockets.
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="tasks_app-enqueue", daemon=True)
                thread.start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise RuntimeError("This is the sync API; inside async code use `await enqueue(...)`.")
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure())
        return future.result(timeout)


background = _BackgroundLoop()
