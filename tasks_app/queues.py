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

from redis.asyncio import from_url as redis_from_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from saq import Queue
from saq.job import TERMINAL_STATUSES, Status
from saq.queue.redis import RedisQueue

from . import conf

logger = logging.getLogger("tasks_app.queues")

# A job just dequeued is not yet marked ACTIVE; one still unmarked this much later is orphaned.
ORPHAN_RECHECK_S = 1.0
# How long a sweep waits for a live owner to acknowledge an abort (its abort loop runs every second).
ABORT_WAIT_S = 2.0

# SAQ's own: at most once per `lock` seconds across workers, list the active jobs.
SWEEP_SCRIPT = """
local id_jobs = {}
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SETEX', KEYS[1], ARGV[1], 1)
    for i, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
        id_jobs[i] = {v, redis.call('GET', v)}
    end
end
return id_jobs
"""

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

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        """SAQ's sweep, without its two races.

        SAQ sweeps an active job whose status is not ACTIVE at once, but a job a
        worker has just dequeued looks exactly like that for a few milliseconds;
        and it retries a swept job even when it completed while being aborted.
        Both ran jobs twice. Here a suspect must still look orphaned a moment
        later, and a job that reached a terminal state is left alone.
        """
        if not self._cleanup_script:
            self._cleanup_script = self.redis.register_script(SWEEP_SCRIPT)
        abort = min(abort, ABORT_WAIT_S)
        id_jobs = await self._cleanup_script(keys=[self._sweep, self._active], args=[lock], client=self.redis)
        swept: list[str] = []
        suspects: list[bytes] = []
        for job_id, job_bytes in id_jobs:
            job = self.deserialize(job_bytes)
            if job is None:
                await self._forget(job_id)
                swept.append(job_id.decode())
            elif job.status != Status.ACTIVE:
                suspects.append(job_id)
            elif job.stuck:
                await self._sweep_job(job, abort)
                swept.append(job_id.decode())
        if suspects:
            await asyncio.sleep(ORPHAN_RECHECK_S)
            for job_id in suspects:
                job = await self._get_job_by_id(job_id)
                still_active = await self.redis.lpos(self._active, job_id) is not None
                if still_active and (job is None or job.status != Status.ACTIVE):
                    if job is None:
                        await self._forget(job_id)
                    else:
                        await self._sweep_job(job, abort)
                    swept.append(job_id.decode())
        return swept

    async def _forget(self, job_id: bytes) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.lrem(self._active, 0, job_id).zrem(self._incomplete, job_id).execute()
        logger.info("Swept missing job %s", job_id.decode())

    async def _sweep_job(self, job, abort: float) -> None:
        logger.warning(
            "Sweeping orphaned job %s (task %s, attempt %d): its worker stopped heartbeating.",
            job.key,
            job.function,
            job.attempts,
        )
        await self.abort(job, error=self.swept_error_message)
        try:
            await job.refresh(abort)
        except TimeoutError:
            logger.info("Could not abort job %s", job.key)
        if job.status in TERMINAL_STATUSES and job.status != Status.ABORTED:
            return  # it finished while being swept
        if job.retryable:
            await self.retry(job, error=self.swept_error_message)
        else:
            await self.finish(job, Status.ABORTED, error=self.swept_error_message)


def make_queue(name: str) -> Queue:
    config = conf.queue_config(name)
    # Bounded connects, so an unreachable Redis fails fast instead of hanging a request;
    # idle connections are checked before use, so a restarted Redis is reconnected to.
    client = redis_from_url(config.url, socket_connect_timeout=5, health_check_interval=30, socket_keepalive=True)
    return DjangoRedisQueue(client, name=name)


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
