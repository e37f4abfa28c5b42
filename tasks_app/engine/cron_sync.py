"""Stored cron runs kept in line with the cron entries in force (``SAQ["CRON_JOBS"]``).

Each entry's next run is one job under a fixed key (``cron:<task>``), so runs never pile up. A
worker's schedule tick (every ``TIMERS["schedule"]`` seconds, and at start) makes Redis agree with
its settings:

- an entry with no pending run gets one, at its next time (``engine/cron.py``);
- a pending run written by another version of the entry (its expression, arguments, options or
  time zone changed), or by something else under the same key (a manual enqueue), is replaced by
  this entry's own, with one compare-and-set;
- a pending run of an entry that is gone is ended ``aborted``, saying so; a run that is already
  running is left to finish.

A daily entry changed after it ran today is not run again today: its first run under the new
expression is the next one on a later local day ("once per local day", as across DST changes).

Every job written here carries ``meta["cron"]``: ``{"entry": fingerprint, "expression": ...,
"last_run": epoch seconds of the run before, or None}``. The keys of the runs this queue's
workers wrote are kept in the set ``saq:<queue>:cron`` so that runs of removed entries are found; a
worker's first tick also scans for ``cron:*`` runs the set does not list (written by an older version).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from saq.job import TERMINAL_STATUSES, Job, Status

from . import records
from .cron import next_run

if TYPE_CHECKING:
    from .queue import AtomicRedisQueue

logger = logging.getLogger("tasks_app.cron")

_DAY = timedelta(hours=23)  # an entry whose runs are at least this far apart is a daily (or rarer) one


@dataclass(frozen=True)
class CronSchedule:
    """A cron entry named ``name`` (its task): ``build(at)`` returns the job for the run at ``at`` (aware
    UTC), under ``key``. ``fingerprint`` tells this version of the entry from another."""

    expression: str
    build: Callable[[datetime], Job]
    name: str = ""
    fingerprint: str = ""

    @property
    def key(self) -> str:
        """The one key of this entry's runs, so a pending run is never duplicated."""
        return self.key_of(self.name)

    @staticmethod
    def key_of(name: str) -> str:
        """The key of the runs of the entry named ``name`` (for ``build``, which makes them)."""
        return f"cron:{name}"


@dataclass(frozen=True)
class StoredRun:
    """What Redis holds for one entry's key, as the dashboard shows it."""

    name: str
    expression: str
    key: str
    status: str | None  # None: no run stored
    due: datetime | None
    # The expression the stored run was written for: another one until a worker of this version ticks.
    stored_expression: str | None = None


def cron_set_key(queue: AtomicRedisQueue) -> str:
    return queue.namespace("cron")


# Queue connections (one per worker) whose Redis was scanned for cron runs missing from the set.
_adopted: weakref.WeakSet = weakref.WeakSet()


async def _adopt_unlisted(queue: AtomicRedisQueue) -> None:
    """On a worker's first tick: add to the set the cron runs it does not list, so that a removed
    entry's run is found too when it was stored by a version without the set (or its member was lost).
    A run is cron's if it says so in meta, or (older versions) its key is ``cron:<its task>``."""
    if queue in _adopted:
        return
    ids = [job_id async for job_id in queue.redis.scan_iter(match=queue.job_id("cron:*"), count=1000)]
    found = []
    for raw in await queue.redis.mget(ids) if ids else []:
        job = queue.deserialize(raw) if raw else None
        if job is not None and ("cron" in (job.meta or {}) or job.key == f"cron:{job.function}"):
            found.append(job.key)
    if found:
        await queue.redis.sadd(cron_set_key(queue), *found)
    _adopted.add(queue)


def _mark(job: Job, entry: CronSchedule, last_run: int | None) -> Job:
    job.meta["cron"] = {
        "entry": entry.fingerprint,
        "expression": entry.expression,
        "last_run": last_run,
        "at": int(job.scheduled),  # its own time: a retry moves ``scheduled``
    }
    return job


def _last_run(stored: Job | None) -> int | None:
    """When the entry's last run that started was due (epoch s): a running or ended stored run's own time
    if it was ever taken, else what it remembers (a run aborted while it waited never ran: the next one is
    not moved past it); None for no run, or a job under the key that cron did not write."""
    if stored is None or "cron" not in (stored.meta or {}):
        return None
    mark = stored.meta["cron"] or {}
    ran = stored.status == Status.ACTIVE or (stored.status in TERMINAL_STATUSES and stored.attempts > 0)
    if ran:
        return mark.get("at") or int(stored.scheduled) or None
    return mark.get("last_run")


def _next_time(entry: CronSchedule, tz: tzinfo, moment: datetime, last_run: int | None, changed: bool) -> datetime:
    if last_run:
        # Never at or before the last run: Redis's clock may have gone back (a failover to a host whose
        # clock is behind).
        moment = max(moment, datetime.fromtimestamp(last_run, UTC))
    at = next_run(entry.expression, tz, moment)
    # Once per local day: a daily entry that already ran today under its old time waits for tomorrow.
    if changed and last_run and next_run(entry.expression, tz, at) - at >= _DAY:
        ran = datetime.fromtimestamp(last_run, UTC).astimezone(tz).date()
        if ran == at.astimezone(tz).date():
            at = next_run(entry.expression, tz, at)
    return at


async def sync_cron(queue: AtomicRedisQueue, entries: Sequence[CronSchedule], tz: tzinfo) -> None:
    """One schedule tick's cron work for ``queue`` (see the module docstring)."""
    wanted = {entry.key: entry for entry in entries if entry.fingerprint not in _broken}
    await _adopt_unlisted(queue)
    await _end_removed(queue, {entry.key for entry in entries})
    if not wanted:
        return
    await queue.redis.sadd(cron_set_key(queue), *wanted)
    # Every entry's stored run in one round trip (this runs each second on every worker), and "now" on
    # Redis's clock after it: a run read as ended is never later than now (read before, it could be, and
    # the run due then would be written again).
    async with queue.redis.pipeline(transaction=False) as pipe:
        pipe.mget([queue.job_id(key) for key in wanted])
        pipe.time()
        raws, (seconds, micros) = await pipe.execute()
    moment = datetime.fromtimestamp(int(seconds) + int(micros) / 1e6, UTC)
    for (key, entry), raw in zip(wanted.items(), raws, strict=True):
        try:
            await _sync_entry(queue, key, entry, raw, tz, moment)
        except (ValueError, TypeError) as exc:  # its next time cannot be found or built: it alone stops
            _broken.add(entry.fingerprint)
            logger.error(
                'Cron entry %s (%r) is skipped until this worker restarts: %s. Fix it in SAQ["CRON_JOBS"].',
                entry.name,
                entry.expression,
                str(exc).rstrip("."),
            )


# Fingerprints of the entries whose next run could not be written (an expression that never fires, a
# time further away than a job may be scheduled): each is logged once, and the others go on.
_broken: set[str] = set()


async def _sync_entry(
    queue: AtomicRedisQueue, key: str, entry: CronSchedule, raw: bytes | None, tz: tzinfo, moment: datetime
) -> None:
    stored = queue.deserialize(raw) if raw else None
    if stored is not None and stored.status not in TERMINAL_STATUSES and stored.status != Status.ACTIVE:
        if (stored.meta.get("cron") or {}).get("entry") == entry.fingerprint:
            return  # this entry's own pending run
        await _replace(queue, key, entry, tz, moment)
    elif stored is None or stored.status in TERMINAL_STATUSES:
        last = _last_run(stored)
        job = _mark(entry.build(_next_time(entry, tz, moment, last, changed=False)), entry, last)
        job.queued = int(moment.timestamp() * 1000)
        # Where nothing or the ended run was read, or not at all: a tick that stalled since its read (a
        # paused host) finds that another worker wrote this run or a later one, which may have ended.
        await records.submit_over(queue, raw, job)
    # ACTIVE: it runs now; its next run is written once it has ended.


async def _replace(queue: AtomicRedisQueue, key: str, entry: CronSchedule, tz: tzinfo, moment: datetime) -> None:
    was: list[str | None] = []

    def change(current: Job) -> Job | None:
        if current.status != Status.QUEUED:
            return None  # taken or ended meanwhile: the next tick decides again
        if (current.meta.get("cron") or {}).get("entry") == entry.fingerprint:
            return None
        was[:] = [(current.meta.get("cron") or {}).get("expression")]
        last = _last_run(current)
        new = _mark(entry.build(_next_time(entry, tz, moment, last, changed=True)), entry, last)
        new.queue, new.status, new.queued = queue, Status.QUEUED, current.queued
        return new

    replaced, done = await records.compare_and_set(queue, key, change)
    if done and replaced is not None:
        logger.info(
            "Cron entry %s rescheduled to %s (%s), replacing the run stored %s",
            entry.name,
            datetime.fromtimestamp(replaced.scheduled, UTC).astimezone(tz).isoformat(),
            entry.expression,
            f"for {was[0]!r}" if was and was[0] else "under its key by something else",
        )


async def _end_removed(queue: AtomicRedisQueue, wanted: set[str]) -> None:
    members = {member.decode() for member in await queue.redis.smembers(cron_set_key(queue))}
    for key in members - wanted:

        def end(current: Job) -> Job | None:
            if current.status != Status.QUEUED:
                return None  # running: left to finish; ended: nothing to do
            current.status = Status.ABORTED
            current.error = 'Its cron entry is no longer in SAQ["CRON_JOBS"].'
            return current

        _, done = await records.compare_and_set(queue, key, end)
        if done:
            logger.info("Cron run %s removed: its entry is no longer in the settings", key)
        await queue.redis.srem(cron_set_key(queue), key)


async def stored_runs(queue: AtomicRedisQueue, entries: Sequence[CronSchedule], tz: tzinfo) -> list[StoredRun]:
    """Each entry's run as Redis holds it now (for the dashboard)."""
    rows = []
    for entry in entries:
        key = entry.key
        stored = await queue.job(key)
        due = datetime.fromtimestamp(stored.scheduled, UTC).astimezone(tz) if stored and stored.scheduled else None
        written_for = (stored.meta.get("cron") or {}).get("expression") if stored else None
        status = stored.status.value if stored else None
        rows.append(StoredRun(entry.name, entry.expression, key, status, due, written_for))
    return rows
