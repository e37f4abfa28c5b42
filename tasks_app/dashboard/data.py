"""What the dashboard reads from SAQ's Redis queues, and the changes its actions make there.

Everything here is async and runs on tasks_app's background loop (see ``run``). The dashboard
keeps connections of its own, with short socket timeouts, so a Redis that is down turns into a
message on the page rather than a hung request or a 500.

SAQ keeps queued/active jobs in lists and finished jobs as keys that expire after their ``ttl``;
complete/failed/aborted counts are therefore counted over the finished jobs Redis still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import RedisError
from saq.job import Job, Status
from saq.queue.redis import RedisQueue
from saq.utils import now

from .. import conf
from ..queues import background, make_queue

logger = logging.getLogger("tasks_app.dashboard")

SCAN_LIMIT = 10_000  # finished jobs looked at per queue and page; beyond it counts say "at least"
CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 5.0
PAGE_TIMEOUT = 20.0
REDIS_ERRORS = (RedisError, OSError, TimeoutError)

# Display statuses: SAQ's, plus "scheduled" for a queued job whose time has not come.
STATUSES = ("queued", "scheduled", "active", "aborting", "complete", "failed", "aborted")


class ActionRefused(Exception):
    """The action does not apply to this job; the message says why."""


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def unreachable(name: str, exc: BaseException) -> str:
    url = redact(conf.queue_config(name).url)
    reason = str(exc) or type(exc).__name__
    return (
        f"Redis for queue {name!r} at {url} is unreachable ({reason}). "
        f'Start Redis, or fix SAQ["QUEUES"]["{name}"]["URL"].'
    )


# --- connections ----------------------------------------------------------------------------------

_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, tuple[str, RedisQueue]]] = (
    weakref.WeakKeyDictionary()
)


async def get_queue(name: str) -> RedisQueue:
    """The dashboard's connection to queue ``name``; a changed URL (settings) gets a new one."""
    url = conf.queue_config(name).url
    queues = _per_loop.setdefault(asyncio.get_running_loop(), {})
    cached = queues.get(name)
    if cached is not None and cached[0] == url:
        return cached[1]
    if cached is not None:
        with contextlib.suppress(*REDIS_ERRORS):
            await cached[1].disconnect()
    # Short timeouts: a page must answer even when Redis does not.
    queue = make_queue(name, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT)
    queues[name] = (url, queue)
    return queue


def run[T](coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the background loop from a sync view."""
    return background.run(coro, timeout=PAGE_TIMEOUT)


# --- rows -----------------------------------------------------------------------------------------


def as_datetime(millis: float | None) -> datetime | None:
    return datetime.fromtimestamp(millis / 1000, tz=UTC) if millis else None


def display_status(job: Job) -> str:
    if job.status == Status.QUEUED and job.scheduled and job.scheduled > time.time():
        return "scheduled"
    return job.status.value


def last_activity(job: Job) -> int:
    return max(job.completed, job.touched, job.started, job.queued)


@dataclass
class WorkerRow:
    id: str
    queue: str
    host: str
    pid: int | None
    concurrency: int | None
    started: datetime | None
    uptime_s: float
    complete: int
    failed: int
    retried: int
    aborted: int
    last_heartbeat: datetime | None

    @property
    def processed(self) -> int:
        return self.complete + self.failed + self.aborted

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "host": self.host,
            "pid": self.pid,
            "concurrency": self.concurrency,
            "started": self.started.isoformat() if self.started else None,
            "uptime_s": round(self.uptime_s, 1),
            "processed": self.processed,
            "complete": self.complete,
            "failed": self.failed,
            "retried": self.retried,
            "aborted": self.aborted,
            "last_heartbeat": self.last_heartbeat.isoformat() if self.last_heartbeat else None,
        }


@dataclass
class QueueStats:
    name: str
    url: str
    queued: int = 0
    active: int = 0
    scheduled: int = 0
    complete: int = 0
    failed: int = 0
    aborted: int = 0
    truncated: bool = False  # more finished jobs than SCAN_LIMIT: counts are lower bounds
    workers: list[WorkerRow] = field(default_factory=list)
    recent: list[Job] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "queued": self.queued,
            "active": self.active,
            "scheduled": self.scheduled,
            "complete": self.complete,
            "failed": self.failed,
            "aborted": self.aborted,
            "counts_truncated": self.truncated,
            "workers": len(self.workers),
            "error": self.error,
        }


# --- reads ----------------------------------------------------------------------------------------


async def _scan(queue: RedisQueue, keep: Callable[[Job], bool], limit: int) -> tuple[Counter[str], list[Job], bool]:
    """Count every job of ``queue`` by display status; return the ``limit`` most recent kept ones."""
    counts: Counter[str] = Counter()
    kept: list[Job] = []
    seen = 0
    async for job in queue.iter_jobs(batch_size=500):
        seen += 1
        if seen > SCAN_LIMIT:
            return counts, _newest(kept, limit), True
        counts[display_status(job)] += 1
        if keep(job):
            kept.append(job)
    return counts, _newest(kept, limit), False


def _newest(jobs: list[Job], limit: int) -> list[Job]:
    return sorted(jobs, key=last_activity, reverse=True)[:limit]


async def _workers(queue: RedisQueue) -> list[WorkerRow]:
    info = await queue.info()
    # SAQ scores each worker's entry with the time its info expires: written at + (worker_info timer + 1) s.
    expiries = dict(await queue.redis.zrangebyscore(queue.namespace("stats"), now(), "inf", withscores=True))
    ttl_ms = (conf.timers().get("worker_info", 10) + 1) * 1000
    rows = []
    for worker_id, worker in info["workers"].items():
        meta = worker.get("metadata") or {}
        stats = worker.get("stats") or {}
        expiry = expiries.get(queue.namespace(f"worker_info:{worker_id}").encode())
        started = meta.get("started")
        rows.append(
            WorkerRow(
                id=worker_id,
                queue=queue.name,
                host=str(meta.get("host", "?")),
                pid=meta.get("pid"),
                concurrency=meta.get("concurrency"),
                started=datetime.fromtimestamp(started, tz=UTC) if started else None,
                uptime_s=(time.time() - started) if started else stats.get("uptime", 0) / 1000,
                complete=stats.get("complete", 0),
                failed=stats.get("failed", 0),
                retried=stats.get("retried", 0),
                aborted=stats.get("aborted", 0),
                last_heartbeat=as_datetime(expiry - ttl_ms) if expiry else None,
            )
        )
    return sorted(rows, key=lambda row: (row.host, row.pid or 0, row.id))


async def queue_stats(name: str, recent_failures: int = 0) -> QueueStats:
    """Counts, workers and (optionally) the most recent failures of one queue; errors become ``error``."""
    stats = QueueStats(name=name, url=redact(conf.queue_config(name).url))
    try:
        queue = await get_queue(name)
        stats.queued = await queue.count("queued")
        stats.active = await queue.count("active")
        stats.scheduled = max(0, await queue.count("incomplete") - stats.queued - stats.active)
        counts, stats.recent, stats.truncated = await _scan(
            queue, lambda job: job.status == Status.FAILED, recent_failures
        )
        stats.complete, stats.failed, stats.aborted = counts["complete"], counts["failed"], counts["aborted"]
        stats.workers = await _workers(queue)
    except REDIS_ERRORS as exc:
        stats.error = unreachable(name, exc)
    return stats


async def overview(names: list[str], recent_failures: int = 0) -> list[QueueStats]:
    return list(await asyncio.gather(*(queue_stats(name, recent_failures) for name in names)))


@dataclass
class JobList:
    jobs: list[Job]
    errors: list[str]
    truncated: bool


async def list_jobs(names: list[str], status: str = "", task: str = "", limit: int = 100) -> JobList:
    """The most recent jobs of ``names`` (newest activity first), filtered by display status and task."""

    def keep(job: Job) -> bool:
        return (not status or display_status(job) == status) and (not task or job.function == task)

    async def one(name: str) -> tuple[list[Job], str | None, bool]:
        try:
            _, jobs, truncated = await _scan(await get_queue(name), keep, limit)
        except REDIS_ERRORS as exc:
            return [], unreachable(name, exc), False
        return jobs, None, truncated

    results = await asyncio.gather(*(one(name) for name in names))
    jobs = _newest([job for found, _, _ in results for job in found], limit)
    return JobList(jobs, [error for _, error, _ in results if error], any(t for _, _, t in results))


async def find_job(name: str, key: str) -> Job | None:
    return await (await get_queue(name)).job(key)


# --- actions --------------------------------------------------------------------------------------


def _audit(job: Job, action: str, by: str) -> None:
    """Who did what, kept with the job (the last 20 actions) and logged."""
    trail = job.meta.setdefault("dashboard", [])
    trail.append({"action": action, "by": by, "at": now()})
    del trail[:-20]
    logger.info(
        "Dashboard: %s %s job %s on queue %s",
        by,
        action,
        job.key,
        job.queue.name if job.queue else "?",
        extra={"action": action, "job_key": job.key, "task": job.function, "user": by},
    )


async def _existing(name: str, key: str) -> tuple[RedisQueue, Job]:
    queue = await get_queue(name)
    job = await queue.job(key)
    if job is None:
        raise ActionRefused(f"Job {key!r} is not in queue {name!r}; finished jobs expire after their ttl.")
    return queue, job


async def retry_job(name: str, key: str, by: str) -> Job:
    """Put a failed or aborted job back on its queue for one more attempt, keeping its key and history."""
    queue, job = await _existing(name, key)
    if job.status not in (Status.FAILED, Status.ABORTED):
        raise ActionRefused(f"Only failed or aborted jobs can be retried; job {key!r} is {display_status(job)}.")
    _audit(job, "retried", by)
    # The last error stays on the job until the next attempt ends, as with SAQ's own retries.
    job.result = None
    job.completed = job.started = 0
    job.progress = 0.0
    job.scheduled = 0
    if await queue.enqueue(job) is None:
        raise ActionRefused(f"Job {key!r} is already pending again (queued, scheduled or being aborted).")
    return job


async def abort_job(name: str, key: str, by: str) -> Job:
    """Abort a queued, scheduled or active job. An active one is cancelled by its worker within a second."""
    queue, job = await _existing(name, key)
    if job.status not in (Status.NEW, Status.QUEUED, Status.ACTIVE):
        raise ActionRefused(
            f"Only queued, scheduled or active jobs can be aborted; job {key!r} is {display_status(job)}."
        )
    was_active = job.status == Status.ACTIVE
    _audit(job, "aborted", by)
    await queue.abort(job, error=f"Aborted from the dashboard by {by}.")
    stored = await queue.job(key)
    if not was_active and stored is not None and stored.status == Status.ABORTING:
        # A scheduled job is in no list a worker reads, so no worker would ever finish the abort.
        await queue.finish_abort(stored)
        stored = await queue.job(key)
    return stored or job


async def enqueue(job: Job, name: str) -> tuple[Job, bool]:
    """Enqueue a built job; ``(pending job, False)`` if its key is already pending."""
    queue = await get_queue(name)
    if await queue.enqueue(job) is None:
        existing = await queue.job(job.key)
        return (existing or job), False
    return job, True
