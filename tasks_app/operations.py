"""Operations on queues and their jobs, below any UI: the dashboard, the commands, the metrics and the
tests call these. Each async operation ``a<name>`` has a sync twin ``<name>`` (as django.tasks pairs
``aenqueue``/``enqueue``) that runs it on tasks_app's background loop; async code awaits the first.

- the queue: ``pause``, ``resume`` (one SET NX: two operators at once cannot both pause it), ``depth``;
- one job: ``retry_job`` (a failed or aborted job, once more, under its key) and ``abort_job``;
- many jobs, in two steps so that an operator confirms a number: ``find`` reads the jobs a ``Selection``
  picks (for the confirmation page, which records when it was shown: ``as_of``); ``act`` reads them again
  and changes each one with a record compare-and-set against what it read, so a job that changed in
  between (a worker took it, someone retried it, its key was enqueued anew) is left alone, and a job that
  fails after the operator read "3,000 failed jobs" is not part of that click;
- the audit: each action is logged (``tasks_app.operations``), written into each job it changes
  (``meta["dashboard"]``, the last 20), and kept in the queue's trail of its last ``TRAIL_LENGTH`` actions
  (``recent_actions``), which also keeps what a job cannot: deletions, pauses and resumes.

Connections have short socket timeouts (``connection``): a Redis that is down is an error in ``REDIS_ERRORS``
within seconds; ``unreachable`` says it in one line naming the setting to fix.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from redis.exceptions import RedisError
from saq.job import TERMINAL_STATUSES, Job, Status

from .engine import chains, limits, pausing, records
from .engine.clock import job_time, redis_now_ms
from .engine.pausing import Depth
from .engine.queue import AtomicRedisQueue
from .enqueueing.connections import background, get_queue, refuse_in_event_loop
from .exceptions import ActionRefused

logger = logging.getLogger("tasks_app.operations")

REDIS_ERRORS = (RedisError, OSError, TimeoutError)
RETRY, DELETE, EMPTY, PAUSE, RESUME = "retry", "delete", "empty", "pause", "resume"
FINISHED = ("complete", "failed", "aborted")  # what DELETE deletes unless told fewer statuses
UNITS = {"minutes": 60, "hours": 3600, "days": 86400}  # the units of DELETE's "older than", in seconds
TRAIL_LENGTH = 100
TIMEOUT_S = 20.0  # a sync twin's wait for its operation
# ``act``'s sync twin waits this long (10,000 jobs take under 2 s; bench/bulk_retry.py); past it the action
ACT_TIMEOUT_S = 120.0  # goes on, and the caller says so rather than guess what changed


def connection(name: str, short_timeouts: bool = True) -> AtomicRedisQueue:
    """Queue ``name`` with short timeouts (connect 2 s, reply 5 s), so a caller answers even when Redis
    does not; or, without ``short_timeouts``, the enqueue path's own (for a caller that then waits)."""
    return get_queue(name, socket_connect_timeout=2.0, socket_timeout=5.0) if short_timeouts else get_queue(name)


def _sync[**P, T](operation: Callable[P, Coroutine[Any, Any, T]], timeout: float = TIMEOUT_S) -> Callable[P, T]:
    """The sync twin of ``operation``; raises ``TimeoutError`` after ``timeout`` s (the operation goes on)."""

    @functools.wraps(operation)
    def twin(*args: P.args, **kwargs: P.kwargs) -> T:
        # Refused in a thread that runs an event loop (it would block it), naming what to await there.
        refuse_in_event_loop(instead=f"await {__name__}.{operation.__name__}(...)")
        return background.run(operation(*args, **kwargs), timeout=timeout)

    twin.__name__ = twin.__qualname__ = operation.__name__.removeprefix("a")
    return twin


# --- the queue ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paused:
    """Who paused a queue, and when."""

    by: str
    at: datetime | None

    @classmethod
    def of(cls, stored: dict | None) -> Paused | None:
        """From a pause record (``Depth.paused``; None: not paused)."""
        if stored is None:
            return None
        at = stored.get("at")
        return cls(by=str(stored.get("by") or "?"), at=datetime.fromtimestamp(at, tz=UTC) if at else None)

    def as_json(self) -> dict[str, Any]:
        return {"by": self.by, "at": self.at.isoformat() if self.at else None}


async def adepth(name: str) -> Depth:
    """Queue ``name``'s counts, pause record and number of live workers, in one round trip."""
    return await pausing.depth(connection(name))


async def alimiters(name: str) -> list[limits.LimiterState]:
    """Queue ``name``'s rate limits and concurrency keys used in the last hour: limit, use, jobs waiting."""
    return await limits.state(connection(name))


async def anow_ms(name: str) -> int:
    """Now on queue ``name``'s Redis (epoch ms), the clock of every job time: for hosts whose clock is off."""
    return await redis_now_ms(connection(name).redis)


async def apause(name: str, by: str) -> Paused | None:
    """Pause queue ``name``: its workers finish what they run and take nothing new; enqueueing goes on.
    Returns who had paused it already (and it stays theirs), or None."""
    queue = connection(name)
    holder, paused_now = await pausing.pause(queue, by)
    if not paused_now:
        return Paused.of(holder)
    await _record(queue, PAUSE, by, "paused the queue")
    return None


async def aresume(name: str, by: str) -> bool:
    """Resume queue ``name``; False if it was not paused."""
    queue = connection(name)
    if not await pausing.resume(queue):
        return False
    await _record(queue, RESUME, by, "resumed the queue")
    return True


async def alive_workers(name: str, short_timeouts: bool = True) -> list[tuple[str, dict[str, Any], int]]:
    """The live workers of queue ``name`` (``connection``): ``(id, info as the worker wrote it, expiry
    in epoch ms)``, judged on Redis's clock. SAQ scores each worker's entry with the time its info
    expires; an entry whose info expired since it was read is left out."""
    queue = connection(name, short_timeouts)
    entries = await queue.redis.zrangebyscore(queue.stats_key, await redis_now_ms(queue.redis), "+inf", withscores=True)
    ids = [key.decode().split(":")[-1] for key, _ in entries]
    infos = await queue.redis.mget([queue.namespace(f"worker_info:{worker_id}") for worker_id in ids]) if ids else []
    return [
        (worker_id, json.loads(raw), int(expiry))
        for worker_id, raw, (_, expiry) in zip(ids, infos, entries, strict=True)
        if raw
    ]


# --- one job --------------------------------------------------------------------------------------


def audit(job: Job, action: str, by: str) -> None:
    """Who did what, kept with the job (the last 20 actions)."""
    trail = job.meta.setdefault("dashboard", [])
    trail.append({"action": action, "by": by, "at": int(time.time() * 1000)})
    del trail[:-20]


def back_for_one_more_attempt(job: Job, by: str, action: str = "retried") -> Job | None:
    """A retry's change to a failed or aborted job (None for any other): queued again under its key
    for one more attempt, with its history; audited as ``action``."""
    if job.status not in (Status.FAILED, Status.ABORTED) or chains.not_run(job):
        return None
    audit(job, action, by)
    # One more attempt than it has had; the last error stays until the next attempt ends.
    job.retries = job.attempts + 1
    job.status, job.result, job.progress = Status.QUEUED, None, 0.0
    job.completed = job.started = job.scheduled = 0
    job.worker_id = None  # a late write from the worker of its last attempt is refused
    return job


def display_status(job: Job) -> str:
    """SAQ's status, or "scheduled" for a queued job whose time has not come."""
    if job.status == Status.QUEUED and job.scheduled and job.scheduled * 1000 > int(time.time() * 1000):
        return "scheduled"
    return job.status.value


async def aretry_job(name: str, key: str, by: str) -> Job:
    """Put a failed or aborted job back on its queue for one more attempt, keeping its key and history.
    Atomic against everything else that may change the job meanwhile. Raises ``ActionRefused``."""
    job, changed = await records.compare_and_set(connection(name), key, lambda job: back_for_one_more_attempt(job, by))
    if job is None:
        raise ActionRefused(f"Job {key!r} is not in queue {name!r}; finished jobs expire after their ttl.")
    if not changed:
        raise ActionRefused(
            f"Only failed or aborted jobs can be retried; job {key!r} is {chains.not_run(job) or display_status(job)}."
        )
    _log_job(job, "retried", by)
    return job


async def aabort_job(name: str, key: str, by: str) -> Job:
    """Abort a queued, scheduled or active job. An active one is cancelled by its worker within a second.

    A job that already ended, or is being aborted, is left as it is: raises ``ActionRefused`` saying so.
    """
    job, changed = await records.request_abort(
        connection(name),
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
    _log_job(job, "aborted", by)
    return job


async def asubmit(job: Job, name: str, short_timeouts: bool = True) -> tuple[Job, str]:
    """Enqueue a built job on queue ``name`` (``connection``): ``(job, "queued" or "deferred")``, or
    ``(pending job, "exists")``."""
    return await records.submit(connection(name, short_timeouts), job)


def _log_job(job: Job, action: str, by: str) -> None:
    queue = job.queue.name if job.queue else "?"
    extra = {"action": action, "job_key": job.key, "task": job.function, "user": by}
    logger.info("Queue %s: %s %s job %s", queue, by, action, job.key, extra=extra)


# --- many jobs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The jobs of ``queue`` a bulk action picks, as they were at ``as_of`` (epoch milliseconds).

    - ``RETRY``: failed jobs (of ``task``, if given) that had failed by ``as_of``;
    - ``DELETE``: finished jobs in ``statuses`` (of ``task``) that finished ``older_than_s`` seconds
      or more before ``as_of``;
    - ``EMPTY``: queued jobs (of ``task``) that were due by ``as_of``, and with ``include_scheduled``
      also those scheduled for later (including retries waiting for their delay).
    """

    action: str
    queue: str
    as_of: int
    task: str = ""
    older_than_s: int = 0
    statuses: tuple[str, ...] = FINISHED
    include_scheduled: bool = False

    # Each bulk action, and what it does to a job: (verb, past tense), as pages and the trail say it.
    VERBS: ClassVar[dict[str, tuple[str, str]]] = {
        RETRY: ("retry", "retried"),
        DELETE: ("delete", "deleted"),
        EMPTY: ("abort", "aborted"),
    }

    def __post_init__(self) -> None:
        if self.action not in self.VERBS:
            raise ValueError(f"Not a bulk job action: {self.action!r}.")
        if not set(self.statuses) <= {status.value for status in TERMINAL_STATUSES}:
            raise ValueError(f"Only finished statuses can be deleted, not {sorted(self.statuses)}.")

    def picks(self, job: Job) -> bool:
        if self.task and job.function != self.task:
            return False
        if self.action == RETRY:
            return job.status == Status.FAILED and 0 < job.completed <= self.as_of and not chains.not_run(job)
        if self.action == DELETE:
            return job.status.value in self.statuses and 0 < job.completed <= self.as_of - self.older_than_s * 1000
        due = not job.scheduled or job.scheduled * 1000 <= self.as_of
        return job.status == Status.QUEUED and job.queued <= self.as_of and (due or self.include_scheduled)

    def describe(self) -> str:
        """What it picks, in words, for messages and the log."""
        of_task = f" of task {self.task}" if self.task else ""
        if self.action == RETRY:
            return f"failed jobs{of_task}"
        if self.action == DELETE:
            kinds = "finished" if len(self.statuses) == 3 else "/".join(self.statuses)
            return f"{kinds} jobs{of_task} older than {_duration(self.older_than_s)}"
        return f"queued{' and scheduled' if self.include_scheduled else ''} jobs{of_task}"

    @property
    def verb(self) -> str:
        """What the action does to each job: "retry", "delete" or "abort"."""
        return self.VERBS[self.action][0]

    @property
    def past(self) -> str:
        """What it did: "retried", "deleted" or "aborted"."""
        return self.VERBS[self.action][1]


@dataclass
class Found:
    """What a selection picks now: how many jobs, and how many per task, most first."""

    count: int
    by_task: list[tuple[str, int]]


@dataclass
class Done:
    """What an action did: ``changed`` jobs of the ``found`` it picked (the others had changed since),
    and ``what``, in words (e.g. "retried 3 failed jobs"), as the queue's trail records it."""

    changed: int
    found: int
    what: str

    @property
    def skipped(self) -> int:
        return self.found - self.changed


async def afind(selection: Selection) -> Found:
    """How many jobs ``selection`` picks, for the confirmation page."""
    tasks: Counter[str] = Counter()
    async for _, job in records.records(connection(selection.queue), selection.picks):
        tasks[job.function] += 1
    return Found(count=sum(tasks.values()), by_task=tasks.most_common())


async def aact(selection: Selection, by: str) -> Done:
    """Apply the selection's action to the jobs it picks; see the module docstring."""
    queue = connection(selection.queue)
    # change_many applies a change to a fresh copy of each record kept here, which ``picks`` kept
    # (and would keep again: as_of is fixed), and writes it only if the record is still the same.
    found = [record async for record in records.records(queue, selection.picks)]
    if selection.action == RETRY:
        changed = await records.change_many(
            queue, found, lambda job: back_for_one_more_attempt(job, by, "retried (bulk)")
        )
    elif selection.action == EMPTY:
        reason = f"Aborted from the dashboard by {by}: queue {selection.queue!r} emptied."

        def change(job: Job) -> Job:
            audit(job, "aborted (queue emptied)", by)
            job.status, job.error = Status.ABORTED, reason  # ``completed``: stamped by the write, on Redis's clock
            return job

        changed = await records.change_many(queue, found, change)
    else:
        changed = await records.delete_many(queue, found)
    done = Done(changed=changed, found=len(found), what=f"{selection.past} {changed} {selection.describe()}")
    await _record(queue, selection.action, by, done.what, jobs=changed, skipped=done.skipped)
    return done


# --- the trail ------------------------------------------------------------------------------------


async def arecent_actions(name: str) -> list[dict[str, Any]]:
    """The queue's last actions, newest first: ``action``, ``by``, ``at`` (aware datetime), ``what``."""
    queue = connection(name)
    entries = []
    for raw in await queue.redis.lrange(_trail_key(queue), 0, TRAIL_LENGTH - 1):
        try:
            entry = json.loads(raw)
            entries.append({**entry, "at": job_time(entry["at"])})
        except (ValueError, KeyError, TypeError):
            continue
    return entries


def _trail_key(queue: AtomicRedisQueue) -> str:
    return queue.namespace("dashboard_actions")  # the name it has always had: trails written before stay


async def _record(queue: AtomicRedisQueue, action: str, by: str, what: str, **extra: Any) -> None:
    entry = {"action": action, "by": by, "at": await redis_now_ms(queue.redis), "what": what, **extra}
    async with queue.redis.pipeline(transaction=True) as pipe:
        await pipe.lpush(_trail_key(queue), json.dumps(entry)).ltrim(_trail_key(queue), 0, TRAIL_LENGTH - 1).execute()
    fields = {"action": action, "queue": queue.name, "user": by, **extra}
    logger.info("Queue %s: %s %s", queue.name, by, what, extra=fields)


def _duration(seconds: int) -> str:
    for unit, size in reversed(UNITS.items()):  # the largest unit it is a whole number of
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit if count != 1 else unit.removesuffix('s')}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


depth = _sync(adepth)
now_ms = _sync(anow_ms)
pause = _sync(apause)
resume = _sync(aresume)
retry_job = _sync(aretry_job)
abort_job = _sync(aabort_job)
submit = _sync(asubmit)
find = _sync(afind)
act = _sync(aact, timeout=ACT_TIMEOUT_S)
recent_actions = _sync(arecent_actions)
