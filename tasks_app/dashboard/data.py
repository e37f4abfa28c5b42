"""What the dashboard reads from SAQ's Redis queues, and the changes its actions make there.

Everything here is async and runs on tasks_app's background loop (see ``run``). The dashboard
keeps connections of its own, with short socket timeouts, so a Redis that is down turns into a
message on the page rather than a hung request or a 500.

SAQ keeps queued/active jobs in lists and finished jobs as keys that expire after their ``ttl``;
complete/failed/aborted counts are therefore counted over the finished jobs Redis still holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from saq.job import Job, Status

from .. import conf
from ..engine import memory_policy, pausing, records
from ..engine.clock import job_time, redis_now_ms
from ..engine.pausing import Depth
from ..engine.queue import AtomicRedisQueue
from ..enqueueing.connections import background, get_queue
from ..exceptions import ActionRefused, reason
from ..redaction import redact_url
from . import activity

logger = logging.getLogger("tasks_app.dashboard")

SCAN_LIMIT = 10_000  # finished jobs looked at per queue and page; beyond it counts say "at least"
CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 5.0
PAGE_TIMEOUT = 20.0
REDIS_ERRORS = (RedisError, OSError, TimeoutError)

# Display statuses: SAQ's, plus "scheduled" for a queued job whose time has not come.
STATUSES = ("queued", "scheduled", "active", "aborting", "complete", "failed", "aborted")


def unreachable(name: str, exc: BaseException) -> str:
    url = redact_url(conf.queue_config(name).url)
    return (
        f"Redis for queue {name!r} at {url} is unreachable ({reason(exc)}). "
        f"Start Redis, or fix {conf.setting_name('QUEUES', name, 'URL')}."
    )


def dashboard_queue(name: str) -> AtomicRedisQueue:
    """The dashboard's connection to queue ``name``: short timeouts, so a page answers even when Redis does not."""
    return get_queue(name, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT)


def run[T](coro: Coroutine[Any, Any, T], timeout: float = PAGE_TIMEOUT) -> T:
    """Run ``coro`` on the background loop from a sync view; raises ``TimeoutError`` after ``timeout`` s."""
    return background.run(coro, timeout=timeout)


# --- rows -----------------------------------------------------------------------------------------


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
        row = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for moment in ("started", "last_heartbeat"):
            row[moment] = row[moment].isoformat() if row[moment] else None
        return {**row, "uptime_s": round(self.uptime_s, 1), "processed": self.processed}


@dataclass(frozen=True)
class Paused:
    """Who paused a queue, and when."""

    by: str
    at: datetime | None

    @classmethod
    def of(cls, stored: dict | None) -> Paused | None:
        """From ``engine.pausing.paused()`` (None: not paused)."""
        if stored is None:
            return None
        at = stored.get("at")
        return cls(by=str(stored.get("by") or "?"), at=datetime.fromtimestamp(at, tz=UTC) if at else None)

    def as_json(self) -> dict[str, Any]:
        return {"by": self.by, "at": self.at.isoformat() if self.at else None}


@dataclass
class QueueStats:
    """One queue's counts and workers; None (shown as "unknown") where Redis could not be read."""

    name: str
    url: str
    queued: int | None = None
    active: int | None = None
    scheduled: int | None = None
    complete: int | None = None
    failed: int | None = None
    aborted: int | None = None
    truncated: bool = False  # more finished jobs than SCAN_LIMIT: counts are lower bounds
    paused: Paused | None = None
    workers: list[WorkerRow] | None = None
    recent: list[Job] = field(default_factory=list)
    error: str | None = None
    eviction: str | None = None  # why its Redis may lose jobs (engine/memory_policy.py), or None
    last_hour: list = field(default_factory=list)  # activity.Minute per minute, oldest first

    COUNTS = ("queued", "active", "scheduled", "complete", "failed", "aborted")

    def as_json(self) -> dict[str, Any]:
        """Counts are null, not 0, for a queue whose Redis could not be read."""
        return {
            "name": self.name,
            **{count: getattr(self, count) for count in self.COUNTS},
            "counts_truncated": self.truncated,
            "paused": self.paused.as_json() if self.paused else None,
            "workers": len(self.workers) if self.workers is not None else None,
            "error": self.error,
            "eviction": self.eviction,
        }


# --- reads ----------------------------------------------------------------------------------------


async def _scan(
    queue: AtomicRedisQueue, keep: Callable[[Job], bool], limit: int
) -> tuple[Counter[str], list[Job], bool]:
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


async def _workers(queue: AtomicRedisQueue) -> list[WorkerRow]:
    """The live workers of ``queue``, read as SAQ's ``info()`` reads them, without its job counts."""
    # SAQ scores each worker's entry with the time its info expires: written at + (worker_info timer + 1) s.
    entries = await queue.redis.zrangebyscore(queue.stats_key, await redis_now_ms(queue.redis), "inf", withscores=True)
    ids = [key.decode().split(":")[-1] for key, _ in entries]
    infos = await queue.redis.mget([queue.namespace(f"worker_info:{worker_id}") for worker_id in ids]) if ids else []
    ttl_ms = (conf.timers().get("worker_info", 10) + 1) * 1000
    rows = []
    for worker_id, raw, (_, expiry) in zip(ids, infos, entries, strict=True):
        if not raw:  # its info expired since the entry was read
            continue
        worker = json.loads(raw)
        meta = worker.get("metadata") or {}
        stats = worker.get("stats") or {}
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
                last_heartbeat=job_time(expiry - ttl_ms) if expiry else None,
            )
        )
    return sorted(rows, key=lambda row: (row.host, row.pid or 0, row.id))


async def queue_stats(name: str, recent_failures: int = 0) -> QueueStats:
    """Counts, workers and (optionally) the most recent failures of one queue; errors become ``error``."""
    stats = QueueStats(name=name, url=redact_url(conf.queue_config(name).url))
    try:
        queue = dashboard_queue(name)
        depth = await pausing.depth(queue)  # counts and pause record, one round trip
        counts, recent, truncated = await _scan(queue, lambda job: job.status == Status.FAILED, recent_failures)
        workers = await _workers(queue)
        last_hour = await activity.last_hour(queue)
        eviction = memory_policy.problem(await memory_policy.read_policy(queue.redis), f"{stats.url} (queue {name!r})")
    except REDIS_ERRORS as exc:
        stats.error = unreachable(name, exc)
        return stats  # every count stays None: unknown, not zero
    stats.queued, stats.active, stats.scheduled = depth.queued, depth.active, depth.scheduled
    stats.complete, stats.failed, stats.aborted = counts["complete"], counts["failed"], counts["aborted"]
    stats.recent, stats.truncated, stats.workers, stats.paused = recent, truncated, workers, Paused.of(depth.paused)
    stats.eviction, stats.last_hour = eviction, last_hour
    return stats


async def depth(name: str) -> Depth:
    """Queue ``name``'s counts, pause record and live workers in one round trip: no scan of its jobs."""
    return await pausing.depth(dashboard_queue(name))


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
            _, jobs, truncated = await _scan(dashboard_queue(name), keep, limit)
        except REDIS_ERRORS as exc:
            return [], unreachable(name, exc), False
        return jobs, None, truncated

    results = await asyncio.gather(*(one(name) for name in names))
    jobs = _newest([job for found, _, _ in results for job in found], limit)
    return JobList(jobs, [error for _, error, _ in results if error], any(t for _, _, t in results))


async def find_job(name: str, key: str) -> Job | None:
    return await dashboard_queue(name).job(key)


# --- actions --------------------------------------------------------------------------------------


def audit(job: Job, action: str, by: str) -> None:
    """Who did what, kept with the job (the last 20 actions)."""
    trail = job.meta.setdefault("dashboard", [])
    trail.append({"action": action, "by": by, "at": int(time.time() * 1000)})
    del trail[:-20]


def _log(job: Job, action: str, by: str) -> None:
    logger.info(
        "Dashboard: %s %s job %s on queue %s",
        by,
        action,
        job.key,
        job.queue.name if job.queue else "?",
        extra={"action": action, "job_key": job.key, "task": job.function, "user": by},
    )


def back_for_one_more_attempt(job: Job, by: str, action: str = "retried") -> Job | None:
    """A retry's change to a failed or aborted job (None for any other): queued again under its key
    for one more attempt, with its history; audited as ``action``."""
    if job.status not in (Status.FAILED, Status.ABORTED):
        return None
    audit(job, action, by)
    # One more attempt than it has had; the last error stays until the next attempt ends.
    job.retries = job.attempts + 1
    job.status, job.result, job.progress = Status.QUEUED, None, 0.0
    job.completed = job.started = job.scheduled = 0
    job.worker_id = None  # a late write from the worker of its last attempt is refused
    return job


async def retry_job(name: str, key: str, by: str) -> Job:
    """Put a failed or aborted job back on its queue for one more attempt, keeping its key and history.

    Atomic against everything else that may change the job meanwhile. Raises ``ActionRefused``.
    """
    job, changed = await records.compare_and_set(
        dashboard_queue(name), key, lambda job: back_for_one_more_attempt(job, by)
    )
    if job is None:
        raise ActionRefused(f"Job {key!r} is not in queue {name!r}; finished jobs expire after their ttl.")
    if not changed:
        raise ActionRefused(f"Only failed or aborted jobs can be retried; job {key!r} is {display_status(job)}.")
    _log(job, "retried", by)
    return job


async def abort_job(name: str, key: str, by: str) -> Job:
    """Abort a queued, scheduled or active job. An active one is cancelled by its worker within a second.

    A job that already ended, or is being aborted, is left as it is: raises ``ActionRefused`` saying so.
    """
    job, changed = await records.request_abort(
        dashboard_queue(name),
        key,
        f"Aborted from the dashboard by {by}.",
        annotate=lambda current: audit(current, "aborted", by),
    )
    if job is None:
        raise ActionRefused(f"Job {key!r} is not in queue {name!r}; finished jobs expire after their ttl.")
    if not changed and job.status == Status.ABORTING:
        raise ActionRefused(f"Job {key!r} is being aborted already; its worker cancels it within a second.")
    if not changed:
        raise ActionRefused(
            f"Only queued, scheduled or active jobs can be aborted; job {key!r} is {display_status(job)}."
        )
    _log(job, "aborted", by)
    return job


async def enqueue(job: Job, name: str) -> tuple[Job, str]:
    """Enqueue a built job: ``(job, "queued" or "deferred")``, or ``(pending job, "exists")``."""
    return await records.submit(dashboard_queue(name), job)
