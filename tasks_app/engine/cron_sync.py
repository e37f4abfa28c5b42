"""Stored cron runs kept in step with the cron entries in force.

Each entry has one pending run in Redis, under its own key (``cron:<task>``), carrying in
``job.meta["cron"]`` what produced it::

    {"entry": "<task>", "expression": "0 2 * * *", "time_zone": "Europe/Berlin",
     "signature": "<16 hex digits of expression, time zone, arguments and options>",
     "previous": <epoch seconds the entry's last run was due at, or null>}

On every schedule tick (one pipelined read of the entries' records and of the queue's cron
registry, ``saq:<queue>:cron``), and with a scan of every ``cron:*`` key on a worker's first tick:

- an entry with no pending run gets its next one;
- a pending run whose signature differs (the entry changed, or the run was written by an older
  version, or by a manual enqueue that took the key) is replaced by the entry's next run;
- a pending run of an entry that is gone is aborted (it never fires); a running one is left to end.

Each write is a record compare-and-set against what was read (``AtomicRedisQueue._replace``) or the
enqueue script, so workers racing on a tick, a worker taking the run, or an abort cannot be lost:
the loser leaves the record as the winner wrote it, and the next tick decides again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from saq.job import TERMINAL_STATUSES, Job, Status
from saq.utils import now, now_seconds

from .cron import first_run

logger = logging.getLogger("tasks_app.worker")

KEY_PREFIX = "cron:"
RUNNING = (Status.ACTIVE, Status.ABORTING)


def cron_key(name: str) -> str:
    """The job key of a cron entry's runs."""
    return f"{KEY_PREFIX}{name}"


def signature(expression: str, tz: tzinfo, kwargs: Any = None, options: Any = None) -> str:
    """16 hex digits that change whenever the entry would produce different runs."""
    text = json.dumps([expression, str(tz), kwargs or {}, options or {}], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CronEntry:
    """A cron entry as the scheduler needs it: ``build(at)`` gives its run due at ``at`` (aware UTC)."""

    name: str
    expression: str
    build: Callable[[datetime], Job]
    signature: str = ""

    @property
    def key(self) -> str:
        return cron_key(self.name)


def cron_meta(job: Job | None) -> dict[str, Any]:
    """``job.meta["cron"]`` (empty when the job was not written by this scheduler)."""
    meta = (job.meta or {}).get("cron") if job is not None else None
    return meta if isinstance(meta, dict) else {}


def is_cron_run(job: Job, key: str) -> bool:
    """A run of a cron entry: marked so, or written by an older version (key ``cron:<its task>``)."""
    return bool(cron_meta(job)) or key == cron_key(job.function)


def last_due(job: Job) -> datetime | None:
    """When the entry's last run was due: this run's time if it ran, else what it recorded."""
    if job.status in TERMINAL_STATUSES and (job.started or job.status != Status.ABORTED):
        seconds = job.scheduled or job.started / 1000 or job.queued / 1000
    else:
        seconds = cron_meta(job).get("previous")
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds else None


class CronSync:
    """Keeps ``queue``'s stored cron runs equal to ``entries`` (see the module docstring)."""

    def __init__(self, queue, entries: Sequence[CronEntry], tz: tzinfo) -> None:
        self.queue = queue
        self.entries = list(entries)
        self.tz = tz
        self.registry_key = queue.namespace("cron")
        self.scanned = False

    async def tick(self) -> None:
        """One pass: one round trip when nothing changed."""
        moment = datetime.now(UTC)
        redis = self.queue.redis
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hkeys(self.registry_key)
            for entry in self.entries:
                pipe.get(self.queue.job_id(entry.key))
            listed, *raws = await pipe.execute()
        current = {entry.key for entry in self.entries}
        gone = {_text(field) for field in listed} - current
        if not self.scanned:
            # Runs stored before the registry existed, or whose registry entry was lost.
            async for job_id in redis.scan_iter(match=self.queue.job_id(f"{KEY_PREFIX}*"), count=1000):
                gone.add(self.queue.job_key_from_id(_text(job_id)))
            gone -= current
            self.scanned = True
        for entry, raw in zip(self.entries, raws, strict=True):
            await self._keep(entry, raw, moment)
        if gone:
            ordered = sorted(gone)
            for key, raw in zip(ordered, await redis.mget([self.queue.job_id(k) for k in ordered]), strict=True):
                await self._drop(key, raw)

    def _next(self, entry: CronEntry, moment: datetime, previous: datetime | None) -> Job:
        at = first_run(entry.expression, self.tz, moment, previous)
        job = entry.build(at)
        job.meta = {
            **(job.meta or {}),
            "cron": {
                "entry": entry.name,
                "expression": entry.expression,
                "time_zone": str(self.tz),
                "signature": entry.signature or entry.expression,
                "previous": int(previous.timestamp()) if previous else None,
            },
        }
        return job

    async def _keep(self, entry: CronEntry, raw: bytes | None, moment: datetime) -> None:
        stored = self.queue.deserialize(raw) if raw else None
        mine = entry.signature or entry.expression
        if stored is None or stored.status in TERMINAL_STATUSES:
            job = self._next(entry, moment, last_due(stored) if stored is not None else None)
            _, state = await self.queue.submit(job)
            if state != "exists":
                await self.queue.redis.hset(self.registry_key, entry.key, mine)
            return
        if stored.status in RUNNING or cron_meta(stored).get("signature") == mine:
            return
        if stored.status != Status.QUEUED:
            return
        if not is_cron_run(stored, entry.key):
            when = f"due {datetime.fromtimestamp(stored.scheduled, tz=UTC):%Y-%m-%d %H:%M}Z" if stored.scheduled else ""
            logger.warning(
                "Cron key %s was held by a job cron did not schedule (task %s %s); replaced by cron's next run.",
                entry.key,
                stored.function,
                when,
                extra={"job_key": entry.key, "task": stored.function},
            )
        elif stored.scheduled and stored.scheduled <= now_seconds():
            return  # due now under the settings it was scheduled by: it runs, and counts as that day's run
        job = self._next(entry, moment, last_due(stored))
        job.queue, job.status, job.queued = self.queue, Status.QUEUED, now()
        if await self.queue._replace(raw, job):
            await self.queue.redis.hset(self.registry_key, entry.key, mine)
            old = cron_meta(stored).get("expression", "?")
            logger.info(
                "Cron entry %s changed (%s -> %s): its next run is %s.",
                entry.name,
                old,
                entry.expression,
                datetime.fromtimestamp(job.scheduled, tz=UTC).astimezone(self.tz).isoformat(),
                extra={"job_key": entry.key, "task": job.function},
            )

    async def _drop(self, key: str, raw: bytes | None) -> None:
        stored = self.queue.deserialize(raw) if raw else None
        if stored is not None and stored.status == Status.QUEUED and is_cron_run(stored, key):
            ended = self.queue.deserialize(raw)
            ended.status, ended.completed = Status.ABORTED, now()
            ended.error = 'aborted: its cron entry is no longer in SAQ["CRON_JOBS"]'
            if not await self.queue._replace(raw, ended):
                return  # it moved on (taken, or changed): decided again next tick
            logger.info("Cron entry %s is gone from the settings: its pending run was removed.", key)
        elif stored is not None and stored.status not in TERMINAL_STATUSES:
            return  # running, or not cron's: left alone; forgotten once it ends
        await self.queue.redis.hdel(self.registry_key, key)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
