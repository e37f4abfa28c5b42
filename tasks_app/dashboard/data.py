"""What the dashboard reads from SAQ's Redis queues, for its pages and its stats.

Everything here is async and runs on tasks_app's background loop (``run``), on the short-timeout
connections of ``tasks_app.operations`` (which holds the actions), so a Redis that is down turns
into a message on the page rather than a hung request or a 500.

SAQ keeps queued/active jobs in lists and finished jobs as keys that expire after their ``ttl``;
complete/failed/aborted counts are therefore counted over the finished jobs Redis still holds.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.apps import apps
from saq.job import Job, Status

from .. import conf
from ..engine import memory_policy
from ..engine.clock import job_time
from ..engine.queue import AtomicRedisQueue
from ..enqueueing.connections import background
from ..operations import REDIS_ERRORS, Paused, adepth, alive_workers, connection, display_status
from ..redaction import redact_url
from ..redis_facts import describe
from . import activity

SCAN_LIMIT = 10_000  # finished jobs looked at per queue and page; beyond it counts say "at least"
PAGE_TIMEOUT = 20.0

# Display statuses: SAQ's, plus "scheduled" for a queued job whose time has not come.
STATUSES = ("queued", "scheduled", "active", "aborting", "complete", "failed", "aborted")


def run[T](coro: Coroutine[Any, Any, T], timeout: float = PAGE_TIMEOUT) -> T:
    """Run ``coro`` on the background loop from a sync view; raises ``TimeoutError`` after ``timeout`` s."""
    return background.run(coro, timeout=timeout)


# --- rows -----------------------------------------------------------------------------------------


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


async def _workers(name: str) -> list[WorkerRow]:
    """The live workers of queue ``name``, as SAQ's ``info()`` reads them, without its job counts."""
    ttl_ms = (conf.timers().get("worker_info", 10) + 1) * 1000  # an entry expires a tick and a second after
    rows = []
    for worker_id, worker, expiry in await alive_workers(name):
        meta, stats = worker.get("metadata") or {}, worker.get("stats") or {}
        started = meta.get("started")
        rows.append(
            WorkerRow(
                id=worker_id,
                queue=name,
                host=str(meta.get("host", "?")),
                pid=meta.get("pid"),
                concurrency=meta.get("concurrency"),
                started=datetime.fromtimestamp(started, tz=UTC) if started else None,
                uptime_s=stats.get("uptime", 0) / 1000,  # the worker's own count: no clocks compared
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
        queue = connection(name)
        depth = await adepth(name)  # counts and pause record, one round trip
        counts, recent, truncated = await _scan(queue, lambda job: job.status == Status.FAILED, recent_failures)
        workers = await _workers(name)
        # Counted by tasks_app.metrics's workers: without it there is nothing to chart.
        last_hour = await activity.last_hour(queue) if apps.is_installed("tasks_app.metrics") else []
        eviction = memory_policy.problem(await memory_policy.read_policy(queue.redis), f"{stats.url} (queue {name!r})")
    except REDIS_ERRORS as exc:
        stats.error = describe(name, exc)
        return stats  # every count stays None: unknown, not zero
    stats.queued, stats.active, stats.scheduled = depth.queued, depth.active, depth.scheduled
    stats.complete, stats.failed, stats.aborted = counts["complete"], counts["failed"], counts["aborted"]
    stats.recent, stats.truncated, stats.workers, stats.paused = recent, truncated, workers, Paused.of(depth.paused)
    stats.eviction, stats.last_hour = eviction, last_hour
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
            _, jobs, truncated = await _scan(connection(name), keep, limit)
        except REDIS_ERRORS as exc:
            return [], describe(name, exc), False
        return jobs, None, truncated

    results = await asyncio.gather(*(one(name) for name in names))
    jobs = _newest([job for found, _, _ in results for job in found], limit)
    return JobList(jobs, [error for _, error, _ in results if error], any(t for _, _, t in results))


async def find_job(name: str, key: str) -> Job | None:
    return await connection(name).job(key)
