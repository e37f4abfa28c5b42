"""Storing several refreshes at once, each thread on a database connection of its own.

``sync_to_async`` runs every ORM call of a worker on one thread, so a refresh of many
feeds would store them one after another, each waiting for PostgreSQL and Redis
in turn: that wait, not the CPU, bounded a whole run. A ``StorePool`` of
``FEEDS_STORE_CONNECTIONS`` threads overlaps those waits. Each thread keeps its
connections for the run and closes them when the pool is closed.

With one connection, work goes to ``sync_to_async``'s thread like any other ORM
call, on the task's own connection (tests inside a test transaction need that).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

T = TypeVar("T")

_STOP = None


class StorePool:
    def __init__(self, size: int) -> None:
        self.size = size
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._unfinished = 0
        self._lock = threading.Lock()

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` on one of the pool's threads; its result or its exception."""
        if self.size <= 1:
            return await sync_to_async(func)(*args)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._unfinished += 1
            if self._unfinished > len(self._threads) < self.size:  # threads start as work needs them
                thread = threading.Thread(target=self._serve, name=f"feed-store-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._jobs.put((func, args, loop, future))
        return await future

    def _serve(self) -> None:
        try:
            while (job := self._jobs.get()) is not _STOP:
                func, args, loop, future = job
                try:
                    result = func(*args)
                except BaseException as exc:
                    loop.call_soon_threadsafe(_settle, future, None, exc)
                else:
                    loop.call_soon_threadsafe(_settle, future, result, None)
                with self._lock:
                    self._unfinished -= 1
        finally:
            connections.close_all()  # this thread's own connections

    async def close(self) -> None:
        """Stop the threads once their work is done; each closes its database connections."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(_STOP)
        await asyncio.to_thread(lambda: [thread.join() for thread in threads])


def _settle(future: asyncio.Future, result: Any, exc: BaseException | None) -> None:
    if future.cancelled():  # its caller gave up; the work is done anyway
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
