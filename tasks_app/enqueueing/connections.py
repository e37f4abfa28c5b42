"""The queues a process talks to: one per event loop and queue name, and a loop for sync callers.

A redis.asyncio connection belongs to the loop that opened it, so queues are cached per
loop. Sync code (views, signal handlers, management commands) submits its work to one
long-lived background loop, rather than opening a new connection and loop per call.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from .. import conf, embedded_redis, redis_urls
from ..engine.queue import AtomicRedisQueue
from ..engine.replication import Durability

logger = logging.getLogger("tasks_app.enqueueing")

T = TypeVar("T")

CacheKey = tuple[str, tuple[tuple[str, Any], ...]]
_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[CacheKey, AtomicRedisQueue]] = (
    weakref.WeakKeyDictionary()
)


def make_client(name: str, *, sync: bool = False, **client_options: Any) -> Redis | SyncRedis:
    """A new redis-py client of queue ``name``'s Redis, from ``redis_urls`` (plain, TLS or Sentinel URLs):
    ``redis.asyncio`` by default, the blocking ``redis.Redis`` with ``sync=True`` (``sync_client.py``, for
    sync callers). ``client_options`` adjust it (e.g. ``socket_timeout``). Every client tasks_app opens to a
    queue's Redis is made here.

    Raises ``ImproperlyConfigured`` for a queue that is not in ``SAQ["QUEUES"]`` or a malformed Sentinel URL.
    """
    config = conf.queue_config(name)
    # Bounded connects, so an unreachable Redis fails fast instead of hanging a request;
    # keepalive notices a Redis that vanished without closing the connection.
    options = {"socket_connect_timeout": 5, "socket_keepalive": True, **client_options}
    if config.url.startswith("unix:"):
        options.pop("socket_keepalive")  # a TCP option: redis-py's unix socket connections refuse it
    if embedded_redis.serves(conf.embedded_redis(), config.url):
        embedded_redis.ensure_running(conf.embedded_redis())
    try:
        return (redis_urls.sync_client if sync else redis_urls.client)(config.url, **options)
    except ValueError as exc:  # a malformed Sentinel URL (check E014 says so at start-up)
        if not redis_urls.is_sentinel(config.url):
            raise
        setting = conf.setting_name("QUEUES", name, "URL")
        raise ImproperlyConfigured(f"{setting} is not a valid Sentinel URL: {exc}.") from None


def make_queue(name: str, **client_options: Any) -> AtomicRedisQueue:
    """A new queue for ``name`` on a ``make_client`` client (``client_options``: see there); ``wait_replicas``
    gives it a ``Durability`` (``engine/replication.py``).

    Raises ``ImproperlyConfigured`` for a queue that is not in ``SAQ["QUEUES"]`` or a malformed Sentinel URL.
    """
    queue = AtomicRedisQueue(make_client(name, **client_options), name=name)
    config = conf.queue_config(name)
    if config.wait_replicas:
        setting = conf.setting_name("QUEUES", name, "URL")
        queue.durability = Durability(config.wait_replicas, config.wait_timeout, setting)
    return queue


def get_queue(name: str = conf.DEFAULT_QUEUE, **client_options: Any) -> AtomicRedisQueue:
    """The queue ``name`` (with these client options) for the running event loop, made on first use."""
    queues = _per_loop.setdefault(asyncio.get_running_loop(), {})
    key = (name, tuple(sorted(client_options.items())))
    if key not in queues:
        queues[key] = make_queue(name, **client_options)
    return queues[key]


def adopt_queue(queue: AtomicRedisQueue) -> None:
    """Let ``get_queue(queue.name)`` hand out a queue a worker already owns on this loop."""
    _per_loop.setdefault(asyncio.get_running_loop(), {})[(queue.name, ())] = queue


def forget_all() -> None:
    """Drop cached queues (the settings changed); the next ``get_queue`` builds new ones."""
    _per_loop.clear()


async def disconnect_all() -> None:
    """Close this loop's cached queues."""
    for queue in _per_loop.pop(asyncio.get_running_loop(), {}).values():
        try:
            await queue.disconnect()
        except Exception:  # already closed (e.g. by SAQ's web app), or Redis is gone
            logger.debug("Queue %r was already disconnected", queue.name)


def refuse_in_event_loop(coro: Coroutine[Any, Any, Any] | None = None, *, instead: str | None = None) -> None:
    """Raise ``RuntimeError`` in a thread that runs an event loop: the sync API would block it. The
    message names ``instead``, the async call to await there, if given. ``coro``, which then never runs,
    is closed first. A test's capture and immediate mode ask too, so that code calling the sync API
    from async code fails in its tests as it would in production."""
    # Not get_running_loop(): it raises and catches an error on every sync call, in the enqueue hot path.
    if asyncio._get_running_loop() is None:
        return
    if coro is not None:
        coro.close()
    twin = f"`{instead}`" if instead else "its async twin (e.g. `await aenqueue(...)` for `enqueue(...)`)"
    raise RuntimeError(
        f"This is the sync API, and this thread runs an event loop; inside async code use {twin}. "
        "(enqueue() is the sync call since tasks_app took django.tasks' names; aenqueue() is the async one.)"
    )


class BackgroundLoop:
    """One event loop in a daemon thread, for sync code that needs Redis."""

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
        """Run ``coro`` on the background loop and return its result (``timeout`` in seconds).

        Raises ``RuntimeError`` when called from a thread that runs an event loop: there,
        the async API must be awaited instead.
        """
        refuse_in_event_loop(coro)
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure())
        return future.result(timeout)


background = BackgroundLoop()
