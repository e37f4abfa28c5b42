"""What every peer job records, identically in every system, for ``bench/peers.py``.

- A completion count per worker process, kept in memory and written to the Redis hash
  ``peers:done`` (field: the pid) by a daemon thread every 50 ms: the benchmark waits for the
  sum to reach the number of jobs, and checks that it does not pass it. No job makes a
  round trip for it.
- For the few jobs whose ``mark`` is not 0 (the first and the last ones in enqueue order),
  one RPUSH of ``"<mark> <start> <end>"`` (epoch seconds, floats) to ``peers:marks``, at the
  job's end. Throughput is read from those times, so almost every job measures nothing.

``PEERS_PROBE_URL`` (a redis:// URL) says where; the benchmark sets it for every worker.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref

import redis
import redis.asyncio

MARKS_KEY = "peers:marks"
DONE_KEY = "peers:done"
FLUSH_INTERVAL_S = 0.05


def _url() -> str:
    try:
        return os.environ["PEERS_PROBE_URL"]
    except KeyError:
        raise RuntimeError("PEERS_PROBE_URL is not set: these jobs are run by bench/peers.py, which sets it.") from None


class _Completions:
    """Jobs finished in this process; a daemon thread publishes the count (started on the first one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # worker threads of huey and dramatiq add at once
        self._count = 0
        self._pid: int | None = None

    def add(self) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first job of this process (or a fork): start publishing
                self._pid, self._count = os.getpid(), 0
                threading.Thread(target=self._publish, args=(self._pid,), name="peers-probe", daemon=True).start()
            self._count += 1

    def _publish(self, pid: int) -> None:
        client = redis.Redis.from_url(_url())
        published = 0
        while True:
            count = self._count
            if count != published:
                try:
                    client.hset(DONE_KEY, str(pid), count)
                    published = count
                except redis.RedisError:
                    pass  # the benchmark stopped its Redis: this process is about to be stopped too
            time.sleep(FLUSH_INTERVAL_S)


completions = _Completions()
_sync_client: redis.Redis | None = None
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = weakref.WeakKeyDictionary()


def _record(mark: int, start: float, end: float) -> str:
    return f"{mark} {start!r} {end!r}"


def finished(mark: int, start: float) -> None:
    """End of a job in a worker thread: ``start`` is ``time.time()`` at the job's start."""
    global _sync_client
    end = time.time()
    if mark:
        if _sync_client is None:
            _sync_client = redis.Redis.from_url(_url())  # thread-safe: a connection per thread from its pool
        _sync_client.rpush(MARKS_KEY, _record(mark, start, end))
    completions.add()


async def afinished(mark: int, start: float) -> None:
    """End of a job on an event loop: ``start`` is ``time.time()`` at the job's start."""
    end = time.time()
    if mark:
        loop = asyncio.get_running_loop()
        client = _async_clients.get(loop)
        if client is None:
            client = _async_clients[loop] = redis.asyncio.Redis.from_url(_url())
        await client.rpush(MARKS_KEY, _record(mark, start, end))
    completions.add()
