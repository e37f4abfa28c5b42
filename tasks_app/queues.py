"""SAQ queues for the running event loop, and a private loop for sync callers.

A redis.asyncio connection belongs to the loop that opened it, so queues are
cached per loop. Sync code (views, signal handlers, management commands)
submits work to one long-lived background loop instead of opening a new
connection, and a new loop, on every call.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from redis.asyncio import from_url as redis_from_url
from saq import Queue

from . import conf
from .redis_queue import DjangoRedisQueue

logger = logging.getLogger("tasks_app.queues")

T = TypeVar("T")

_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Queue]] = weakref.WeakKeyDictionary()


def make_queue(name: str, **client_options: Any) -> DjangoRedisQueue:
    """A new queue for ``name``; ``client_options`` adjust its redis-py client (e.g. timeouts)."""
    config = conf.queue_config(name)
    # Bounded connects, so an unreachable Redis fails fast instead of hanging a request;
    # keepalive notices a Redis that vanished without closing the connection.
    options = {"socket_connect_timeout": 5, "socket_keepalive": True, **client_options}
    return DjangoRedisQueue(redis_from_url(config.url, **options), name=name)


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


def forget_all() -> None:
    """Drop cached queues (the settings changed); the next ``get_queue`` builds new ones."""
    _per_loop.clear()


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
