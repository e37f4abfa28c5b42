"""Actions on many jobs of a queue, and on the queue itself: for the dashboard and the commands.

A bulk action happens in two steps, so that the operator confirms a number:

1. ``find`` reads the jobs a ``Selection`` picks (a scan of the queue's jobs), for the confirmation
   page, which records when it was shown (``as_of``);
2. the action reads them again and changes each one with a record compare-and-set against what it
   read (``engine.records.change_many`` / ``delete_many``): a job that changed in between (a worker
   took it, someone retried it, its key was enqueued anew) is left alone. Only jobs that matched
   already at ``as_of`` are picked, so a job that fails after the operator read "3,000 failed jobs"
   is not part of that click.

Each action is logged (``tasks_app.dashboard``), written into each job it changes
(``meta["dashboard"]``, as the single-job actions are), and recorded in the queue's own trail of
the last ``TRAIL_LENGTH`` queue actions (``recent_actions``), which also keeps what a job cannot:
deletions, pauses and resumes.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

from saq.job import TERMINAL_STATUSES, Job, Status

from ..engine import pausing, records
from ..engine.clock import job_time
from ..engine.queue import AtomicRedisQueue
from .data import Paused, audit, back_for_one_more_attempt, dashboard_queue

logger = logging.getLogger("tasks_app.dashboard")

RETRY, DELETE, EMPTY, PAUSE, RESUME = "retry", "delete", "empty", "pause", "resume"
FINISHED = ("complete", "failed", "aborted")  # what DELETE deletes unless told fewer statuses
UNITS = {"minutes": 60, "hours": 3600, "days": 86400}  # the units of DELETE's "older than", in seconds
TRAIL_LENGTH = 100
# A bulk action's page waits this long for it (10,000 jobs take under 2 s; bench/bulk_retry.py).
# Past it the action goes on; the page says so rather than guess what changed.
ACT_TIMEOUT_S = 120.0


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
            return job.status == Status.FAILED and 0 < job.completed <= self.as_of
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
    """What a selection picks now: how many jobs, and how many per task."""

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


async def find(selection: Selection) -> Found:
    """How many jobs ``selection`` picks, for the confirmation page."""
    tasks: Counter[str] = Counter()
    async for _, job in records.records(dashboard_queue(selection.queue), selection.picks):
        tasks[job.function] += 1
    return Found(count=sum(tasks.values()), by_task=tasks.most_common())


async def act(selection: Selection, by: str) -> Done:
    """Apply the selection's action to the jobs it picks; see the module docstring."""
    queue = dashboard_queue(selection.queue)
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
            job.status, job.error, job.completed = Status.ABORTED, reason, int(time.time() * 1000)
            return job

        changed = await records.change_many(queue, found, change)
    else:
        changed = await records.delete_many(queue, found)
    done = Done(changed=changed, found=len(found), what=f"{selection.past} {changed} {selection.describe()}")
    await _record(queue, selection.action, by, done.what, jobs=changed, skipped=done.skipped)
    return done


async def pause(name: str, by: str) -> Paused | None:
    """Pause queue ``name``: its workers finish what they run and take nothing new; enqueueing goes on.
    Returns who had paused it already (and it stays theirs), or None."""
    queue = dashboard_queue(name)
    holder, paused_now = await pausing.pause(queue, by)  # one SET NX: two operators at once cannot both pause it
    if not paused_now:
        return Paused.of(holder)
    await _record(queue, PAUSE, by, "paused the queue")
    return None


async def resume(name: str, by: str) -> bool:
    """Resume queue ``name``; False if it was not paused."""
    queue = dashboard_queue(name)
    if not await pausing.resume(queue):
        return False
    await _record(queue, RESUME, by, "resumed the queue")
    return True


async def recent_actions(name: str) -> list[dict[str, Any]]:
    """The queue's last actions, newest first: ``action``, ``by``, ``at`` (aware datetime), ``what``."""
    queue = dashboard_queue(name)
    entries = []
    for raw in await queue.redis.lrange(_trail_key(queue), 0, TRAIL_LENGTH - 1):
        try:
            entry = json.loads(raw)
            entries.append({**entry, "at": job_time(entry["at"])})
        except (ValueError, KeyError, TypeError):
            continue
    return entries


def _trail_key(queue: AtomicRedisQueue) -> str:
    return queue.namespace("dashboard_actions")


async def _record(queue: AtomicRedisQueue, action: str, by: str, what: str, **extra: Any) -> None:
    entry = {"action": action, "by": by, "at": int(time.time() * 1000), "what": what, **extra}
    async with queue.redis.pipeline(transaction=True) as pipe:
        await pipe.lpush(_trail_key(queue), json.dumps(entry)).ltrim(_trail_key(queue), 0, TRAIL_LENGTH - 1).execute()
    logger.info(
        "Queue %s: %s %s",
        queue.name,
        by,
        what,
        extra={"action": action, "queue": queue.name, "user": by, **extra},
    )


def _duration(seconds: int) -> str:
    for unit, size in reversed(UNITS.items()):  # the largest unit it is a whole number of
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit if count != 1 else unit.removesuffix('s')}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
