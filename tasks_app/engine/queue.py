"""``AtomicRedisQueue``: SAQ's Redis queue in which every job state change is one compare-and-set.

SAQ's own ``RedisQueue`` writes a job's new status without looking at the current one,
so a worker finishing a job, the sweep and an abort can overwrite each other, and a job
can end in two states or in none. Here each change is one Lua script (``engine/lua.py``)
that checks the stored state first:

=====================  ==========================================  ==============================
change                 from                                        who
=====================  ==========================================  ==============================
enqueue                no job, or a terminal one (else: that job;  ``submit`` / ``enqueue``
                       an ABORTING one: the new job waits for it)
take                   QUEUED -> ACTIVE, attempts + 1              a worker (``take``)
touch (heartbeat)      ACTIVE/ABORTING held by this attempt        its worker (``touch``)
finish                 ACTIVE/ABORTING/QUEUED held by the attempt  its worker (``end_attempt``)
retry, re-queue        ACTIVE held by the attempt -> QUEUED        its worker; ABORTING -> ABORTED
abort                  QUEUED -> ABORTED, ACTIVE -> ABORTING       anyone (``abort``)
end an abort           ABORTING held by the attempt -> ABORTED     its worker (``end_abort``)
sweep                  ACTIVE/ABORTING with no heartbeat -> QUEUED  any worker (``sweep``)
                       (attempts left) or ABORTED
=====================  ==========================================  ==============================

A terminal job (complete, failed, aborted) is never written again, except by enqueueing
its key anew. Every non-terminal job is referenced by the queue's lists, so the sweep
can always resolve it; terminal jobs expire after their ``ttl``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime

from saq.job import TERMINAL_STATUSES, Job, Status
from saq.queue.redis import RedisQueue
from saq.utils import now, now_seconds

from ..exceptions import JobNotStorable, JobStateConflict
from . import lua, replication, sweeping
from .pipelining import AutoPipeline

logger = logging.getLogger("tasks_app.engine")

# A worker id is written into the job header unescaped, so it must not need escaping in JSON.
WORKER_ID = re.compile(r"[\w.:-]{1,180}", re.ASCII)

# How often a compare-and-set re-reads a job that changed under it (e.g. a heartbeat) before giving up.
CAS_ATTEMPTS = 8

TAIL, HEAD, SCHEDULED = "tail", "head", "none"

# The hand-written pieces in use. Only bench/pieces.py turns one off (in processes of its own), to
# measure it against the plain alternative: redis-py's Script calls, SAQ's Job.to_dict(), cjson in Lua.
PIECES = {"pipelining": True, "serializer": True, "header_first": True}

HEADER_FIELDS = ("status", "attempts", "started", "touched", "completed", "worker_id")
# The job's other fields and their defaults (a default_factory's default is its product's "empty").
BODY_FIELDS = (
    *(
        (field.name, {} if field.default_factory is dict else field.default)
        for field in dataclasses.fields(Job)
        if field.name not in HEADER_FIELDS and field.default_factory in (dict, dataclasses.MISSING)
    ),
    ("key", None),  # a default_factory of its own: always written
)


@dataclasses.dataclass(frozen=True)
class Depth:
    """What ``AtomicRedisQueue.depth()`` reads: jobs queued, running and scheduled for later (retries
    waiting for their delay included), the pause record (None when running) and live workers."""

    queued: int
    active: int
    scheduled: int
    paused: dict | None
    workers: int


def job_time(millis: float | None) -> datetime | None:
    """A time SAQ keeps on a job (epoch milliseconds, 0 for "not yet") as an aware UTC datetime, or None:
    also for a time no datetime can hold (a record not written by tasks_app), which pages show as unknown."""
    if not millis:
        return None
    try:
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def now_ms() -> int:
    """Now, in epoch milliseconds: the unit SAQ stamps jobs with (``queued``, ``started``, ...)."""
    return now()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class AtomicRedisQueue(RedisQueue):
    """SAQ's ``RedisQueue`` with atomic, state-checked transitions (see the module docstring).

    Jobs are stored as JSON with a fixed header, so ``dump`` and ``load`` cannot be changed.
    Key names are SAQ's, so SAQ's own tools (``saq`` CLI, its web UI) read the same queues.
    """

    durability: replication.Durability | None = None  # wait_replicas: see engine/replication.py

    def __init__(self, redis, name: str = "default", **kwargs) -> None:
        if kwargs.get("dump") or kwargs.get("load"):
            raise TypeError("AtomicRedisQueue stores JSON with a fixed header; dump and load cannot be replaced.")
        super().__init__(redis, name=name, **kwargs)
        self.queued_key = self.namespace("queued")
        self.active_key = self.namespace("active")
        self.incomplete_key = self.namespace("incomplete")
        self.sweep_key = self.namespace("sweep")
        self.schedule_key = self.namespace("schedule")
        self.paused_key = self.namespace("paused")
        self.stats_key = self.namespace("stats")
        self.scripts = {
            name: redis.register_script(lua.source(name, header_first=PIECES["header_first"]))
            for name in (
                "enqueue", "take", "activate", "finish", "finish_and_take", "requeue", "update", "touch", "end_abort",
                "replace", "schedule", "sweep_scan", "drop_entry", "relist", "delete_if_unchanged", "due",
            )
        }  # fmt: skip
        # Ids of jobs the sweep found gone (their index entries removed), for the worker to count.
        self.evicted: deque[str] = deque(maxlen=10_000)
        self.pipeline = AutoPipeline(redis, {script.sha: script.script for script in self.scripts.values()})

    async def disconnect(self) -> None:
        await self.pipeline.disconnect()
        await super().disconnect()

    # --- storage ----------------------------------------------------------------------------------

    # Kept, measured against SAQ's Job.to_dict() + json.dumps (header first as here) by bench/pieces.py
    # (--variants all,no-serializer --workloads noop,enqueue; 2 cores shared with 7 other sessions): CPU
    # per job 1.10x on enqueue_many of 2,000 (75.5 vs 82.7 us), 1.04x-1.17x on no-op jobs through
    # runworker (two runs, the machine quiet and loaded); peers.py with it replaced: no-op CPU 1.33x.
    def serialize(self, job: Job) -> str:
        """The job as JSON whose first six fields are its state (``engine/lua.py`` reads them there)."""
        worker = job.worker_id
        if worker is not None and not WORKER_ID.fullmatch(worker):
            raise ValueError(f"Worker id {worker!r} must be 1-180 letters, digits or . _ : - characters.")
        if not PIECES["header_first"] or not PIECES["serializer"]:
            return self._serialize_plain(job)
        # Job.to_dict(), without the header fields, and without looking up the fields every time.
        data = {}
        for name, default in BODY_FIELDS:
            value = getattr(job, name)
            if value is default or (type(value) is type(default) and value == default):
                continue
            if name == "queue":
                value = value.name if value else None
                if value is None:
                    continue
            elif name == "meta" and not value:
                continue
            data[name] = value
        header = (
            f'{{"status": "{Status(job.status).value}", "attempts": {int(job.attempts)}, '
            f'"started": {int(job.started)}, "touched": {int(job.touched)}, "completed": {int(job.completed)}, '
            f'"worker_id": {json.dumps(worker)}, '
        )
        try:
            body = json.dumps(data, allow_nan=False)  # NaN is not JSON: other readers would choke
        except (TypeError, ValueError, RecursionError) as exc:
            raise JobNotStorable(job.key, exc) from None
        return header + body[1:]

    def _serialize_plain(self, job: Job) -> str:
        # bench/pieces.py's alternatives: SAQ's to_dict() dumped by json, with or without the header first.
        data = job.to_dict()
        try:
            if not PIECES["header_first"]:
                return json.dumps(data)
            header = {name: data.pop(name, None) for name in HEADER_FIELDS}
            header["status"] = Status(job.status).value
            for name in HEADER_FIELDS[1:5]:
                header[name] = int(header[name] or 0)
            return json.dumps(header)[:-1] + ", " + json.dumps(data)[1:]
        except (TypeError, ValueError, RecursionError) as exc:
            raise JobNotStorable(job.key, exc) from None

    def successor_key(self, job_key: str) -> str:
        """Where work enqueued under the key of an aborting job waits for it to end."""
        return self.namespace(f"successor:{job_key}")

    def _keys(self, job: Job) -> list[str]:
        return [job.id, self.active_key, self.incomplete_key, self.queued_key, self.successor_key(job.key)]

    async def _script(self, name: str, keys: list, args: list, gather: bool = False):
        # Not through redis-py's Script wrapper, which costs more than the no-op job it runs for:
        # pipelined on a connection of the queue's own (engine/pipelining.py).
        if self.durability is not None and name in replication.DURABLE_SCRIPTS:
            return await self.durability.script(self, name, keys, args)
        if not PIECES["pipelining"]:
            return await self.scripts[name](keys=keys, args=args)  # redis-py's own, for bench/pieces.py
        return await self.pipeline.evalsha(self.scripts[name].sha, keys, args, gather)

    def _stored(self, reply: list) -> Job | None:
        return self.deserialize(reply[1]) if len(reply) > 1 and reply[1] else None

    # --- enqueue ----------------------------------------------------------------------------------

    async def submit(self, job: Job) -> tuple[Job, str]:
        """Enqueue ``job``: ``(job, "queued")``; ``(job, "deferred")`` when a job of the same key is
        being aborted (the new one is queued the moment that one ends); or ``(pending job, "exists")``
        when a job of that key is queued, scheduled or running, or new work already waits for it.

        Raises ``ValueError`` for a job of another queue.
        """
        if job.queue and job.queue.name != self.name:
            raise ValueError(f"Job {job.key} belongs to queue {job.queue.name!r}, not {self.name!r}.")
        job.queue = self
        job.queued = now()
        job.status = Status.QUEUED
        await self._before_enqueue(job)
        return await self._submit(job)

    async def _submit(self, job: Job) -> tuple[Job, str]:
        scheduled = job.scheduled or 0
        reply = await self._script(
            "enqueue",
            [job.id, self.incomplete_key, self.queued_key, self.successor_key(job.key)],
            [self.serialize(job), scheduled],
        )
        state = _text(reply[0])
        if state == "exists":
            return self.deserialize(reply[1]), state
        return job, state

    async def submit_many(self, jobs: Sequence[Job]) -> list[tuple[Job, str]]:
        """``submit`` for many jobs in one pipeline (one round trip); results in order."""
        for job in jobs:
            if job.queue and job.queue.name != self.name:
                raise ValueError(f"Job {job.key} belongs to queue {job.queue.name!r}, not {self.name!r}.")
            job.queue, job.queued, job.status = self, now(), Status.QUEUED
            await self._before_enqueue(job)
        script = self.scripts["enqueue"]
        async with self.redis.pipeline(transaction=False) as pipe:
            for job in jobs:
                await script(
                    keys=[job.id, self.incomplete_key, self.queued_key, self.successor_key(job.key)],
                    args=[self.serialize(job), job.scheduled or 0],
                    client=pipe,
                )
            replies = await replication.execute(self, pipe)
        return [
            (self.deserialize(reply[1]), "exists") if _text(reply[0]) == "exists" else (job, _text(reply[0]))
            for job, reply in zip(jobs, replies, strict=True)
        ]

    async def _enqueue(self, job: Job) -> Job | None:
        # SAQ's contract: the job if it was enqueued (or waits for its aborting namesake), else None.
        job, state = await self._submit(job)
        return None if state == "exists" else job

    @staticmethod
    def _same_attempt(stored: Job | None, job: Job) -> bool:
        return stored is not None and stored.worker_id == job.worker_id and stored.attempts == job.attempts

    async def _requeue_after_delay(self, job: Job, owner: str | None) -> Status:
        delay = job.next_retry_delay()
        if delay:
            return await self._requeue(job, SCHEDULED, now_seconds() + delay, owner)
        return await self._requeue(job, TAIL, 0, owner)

    def _reset_for_retry(self, job: Job, error: str | None) -> None:
        job.status, job.error = Status.QUEUED, error
        # A queued job belongs to no worker, so a late write from the last one is refused.
        job.worker_id = None
        job.completed = job.started = 0
        job.progress = 0.0
        job.touched = now()

    async def _requeue(
        self, job: Job, push: str, score: float, owner: str | None, expected_attempts: int | None = None
    ) -> Status:
        """Write ``job`` back on the queue if the attempt is still ``owner``'s (``expected_attempts``)."""
        attempts = job.attempts if expected_attempts is None else expected_attempts
        reply = await self._script(
            "requeue",
            self._keys(job),
            [self.serialize(job), score, push, "active,queued", owner or "", attempts, job.ttl, now()],
        )
        state = _text(reply[0])
        if state == "queued":
            return Status.QUEUED
        stored = self._stored(reply)
        if state == "aborted" and stored is not None:
            job.replace(stored)
            self.aborted += 1
            return Status.ABORTED
        if self._same_attempt(stored, job) and stored.status == Status.QUEUED:
            return Status.QUEUED  # written already (the reply to an earlier try was lost)
        raise JobStateConflict(job.key, Status.QUEUED.value, stored)

    async def _finish_cas(self, job: Job, status: Status | str, script: str = "finish") -> list:
        # SAQ's HTTP proxy passes statuses as plain strings. A worker's finish-and-take may share a
        # write with its other slots': its order against other commands does not matter.
        return await self._script(
            script,
            [*self._keys(job), self.paused_key],
            [self.serialize(job), Status(status).value, job.ttl, "active,aborting,queued", job.worker_id or "",
             job.attempts, now()],
            gather=script == "finish_and_take",
        )  # fmt: skip

    def _count(self, status: Status) -> None:
        if status == Status.COMPLETE:
            self.complete += 1
        elif status == Status.FAILED:
            self.failed += 1
        elif status == Status.ABORTED:
            self.aborted += 1

    # --- SAQ's backend hooks, as compare-and-sets -------------------------------------------------

    async def _update(self, job: Job, status: Status | None = None, **kwargs) -> None:
        if status is not None and Status(status) in TERMINAL_STATUSES:
            raise ValueError(f"A job becomes {Status(status).value} through finish(), not update().")
        if status is not None and Status(status) == Status.ABORTING:
            # Asking for an abort is open to anyone, not only the attempt's owner: do it atomically.
            await self.request_abort(job.key, job.error or "abort")
            return
        if status is not None:
            job.status = Status(status)
        reply = await self._script(
            "update", [job.id], [self.serialize(job), Status(status).value if status else "", job.worker_id or "",
                                 job.attempts],
        )  # fmt: skip
        if _text(reply[0]) != "ok":
            logger.debug("Update of job %s refused: it moved on (%s)", job.key, _text(reply[0]))

    async def _retry(self, job: Job, error: str | None) -> None:
        # SAQ's retry() has set the fields and counts the retry; an abort that won is a conflict to it.
        owner, job.worker_id = job.worker_id, None  # as _reset_for_retry: a queued job has no worker
        if await self._requeue_after_delay(job, owner) != Status.QUEUED:
            raise JobStateConflict(job.key, Status.QUEUED.value, job)

    async def _finish(self, job: Job, status: Status, *, result=None, error=None) -> None:
        reply = await self._finish_cas(job, status)
        if _text(reply[0]) == "ok":
            return
        stored = self._stored(reply)
        if stored is not None and stored.status == status and stored.attempts == job.attempts:
            job.replace(stored)
            return  # the same outcome, recorded twice: nothing changes
        raise JobStateConflict(job.key, Status(status).value, stored)

    async def finish_abort(self, job: Job) -> None:
        # SAQ's own worker then calls finish(ABORTED), which counts the abort.
        await self._end_abort(job, count=False)

    async def _end_abort(self, job: Job, count: bool = True) -> Job:
        """ABORTING -> ABORTED for the attempt its worker has just cancelled; returns the stored job."""
        reply = await self._script("end_abort", self._keys(job), [job.worker_id or "", job.attempts, now(), job.ttl])
        stored = self._stored(reply)
        if _text(reply[0]) != "aborted":
            if stored is not None and stored.status == Status.ABORTED:
                job.replace(stored)
                return job  # already ended (e.g. twice through SAQ's own worker): nothing to do
            raise JobStateConflict(job.key, Status.ABORTED.value, stored)
        job.replace(stored)
        self.aborted += count
        return job

    async def abort(self, job: Job, error: str, ttl: float = 5) -> Status:
        """SAQ's ``abort``, atomic: see ``request_abort``. Returns the job's status afterwards (also set
        on ``job``); raises ``JobStateConflict`` if the job no longer exists."""
        result, _ = await self.request_abort(job.key, error)
        if result is None:
            raise JobStateConflict(job.key, Status.ABORTED.value, None)
        job.replace(result)
        return result.status

    async def request_abort(
        self, key: str, error: str, annotate: Callable[[Job], None] | None = None
    ) -> tuple[Job | None, bool]:
        """Abort the job with ``key``: a queued or scheduled one ends ABORTED at once; a running one
        becomes ABORTING and its worker cancels it within a second (or the sweep ends it, if that
        worker is gone). A job that already ended, or is already being aborted, is left as it is.

        ``annotate`` may add to the job (e.g. an audit trail) in the same write. Returns
        ``(job after, True)``, ``(job as it is, False)``, or ``(None, False)`` for no such job.
        """

        def change(current: Job) -> Job | None:
            if current.status in TERMINAL_STATUSES or current.status == Status.ABORTING:
                return None
            current.error = error
            if current.status == Status.ACTIVE:
                current.status = Status.ABORTING
            else:
                current.status, current.completed = Status.ABORTED, now()
            if annotate is not None:
                annotate(current)
            return current

        result, changed = await self.compare_and_set(key, change)
        if changed and result.status == Status.ABORTED:
            self.aborted += 1
        return result, changed

    # --- reading and deciding: record compare-and-set ---------------------------------------------

    async def compare_and_set(self, key: str, change: Callable[[Job], Job | None]) -> tuple[Job | None, bool]:
        """Apply ``change`` to the stored job with ``key`` atomically.

        ``change`` gets a fresh copy of the stored job and returns it modified, or None for "leave it".
        The write happens only if the stored record is still the one read; otherwise it is read again
        and ``change`` called again. Returns ``(job after, True)``, ``(stored job, False)`` when
        ``change`` declined, or ``(None, False)`` when no such job exists.
        Raises ``JobStateConflict`` if the job kept changing under it.
        """
        current = None
        for _ in range(CAS_ATTEMPTS):
            raw = await self.redis.get(self.job_id(key))
            if raw is None:
                return None, False
            current = self.deserialize(raw)
            new = change(self.deserialize(raw))
            if new is None:
                return current, False
            if await self._replace(raw, new):
                return new, True
        raise JobStateConflict(key, "changed", current)

    async def _replace(self, raw: bytes, new: Job) -> bool:
        reply = await self._script("replace", self._keys(new), self._replace_args(raw, new))
        return _text(reply[0]) == "ok"

    def _replace_args(self, raw: bytes, new: Job) -> list:
        push, score = (TAIL, 0) if not new.scheduled or new.scheduled <= now_seconds() else (SCHEDULED, new.scheduled)
        return [raw, self.serialize(new), new.status.value, new.ttl, score, push]

    # --- many jobs at once ------------------------------------------------------------------------

    async def records(self, keep: Callable[[Job], bool], batch: int = 1000) -> AsyncIterator[tuple[bytes, Job]]:
        """``(stored record, job)`` of every job of this queue for which ``keep(job)`` is true."""
        cursor = 0
        while True:
            cursor, ids = await self.redis.scan(cursor=cursor, match=self.job_id("*"), count=batch)
            if ids:
                for raw in await self.redis.mget(ids):
                    job = self.deserialize(raw) if raw else None
                    if job is not None and keep(job):
                        yield raw, job
            if not cursor:
                return

    async def change_many(self, found: Iterable[tuple[bytes, Job]], change: Callable[[Job], Job | None]) -> int:
        """Apply ``change`` to each job found (a fresh copy; None leaves it), each write a record
        compare-and-set against the record found, 500 per round trip. A job that changed since it
        was found is left alone. Returns how many were changed."""
        return await self._many(
            found, change, lambda raw, new: ("replace", self._keys(new), self._replace_args(raw, new))
        )

    async def delete_many(self, found: Iterable[tuple[bytes, Job]]) -> int:
        """Delete each job found, unless it changed since; 500 per round trip. Returns how many went."""
        return await self._many(found, lambda job: job, lambda raw, job: ("delete_if_unchanged", [job.id], [raw]))

    async def _many(self, found, change, call) -> int:
        done = 0
        chunk: list = []

        async def flush() -> int:
            async with self.redis.pipeline(transaction=False) as pipe:
                for name, keys, args in chunk:
                    await self.scripts[name](keys=keys, args=args, client=pipe)
                replies = await replication.execute(self, pipe)
            chunk.clear()
            return sum(1 for reply in replies if reply == 1 or (isinstance(reply, list) and _text(reply[0]) == "ok"))

        for raw, _ in found:
            new = change(self.deserialize(raw))
            if new is None:
                continue
            chunk.append(call(raw, new))
            if len(chunk) >= 500:
                done += await flush()
        if chunk:
            done += await flush()
        return done

    # --- schedule and sweep -----------------------------------------------------------------------

    async def schedule(self, lock: int = 1) -> list[str]:
        """Queue the scheduled jobs that are due; returns their ids. At most once per ``lock`` seconds
        across all workers (0: no lock, for tests that move the clock)."""
        due = await self._script(
            "schedule", [self.schedule_key, self.incomplete_key, self.queued_key], [int(lock), now_seconds()]
        )
        return [_text(job_id) for job_id in due]

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        """SAQ's sweep, as compare-and-sets: see ``engine/sweeping.py``. ``abort`` is accepted for
        SAQ's signature: nothing is waited for, each change is checked against what was read."""
        return await sweeping.sweep(self, lock)

    # --- pausing ----------------------------------------------------------------------------------

    async def pause(self, by: str) -> tuple[dict, bool]:
        """Pause the queue: its workers finish what they run and take nothing new; enqueueing goes on.

        Returns who paused it and when (``{"by": ..., "at": epoch seconds}``), and whether this call
        did: if it was paused already, it stays paused by whoever did it first.
        """
        mine = {"by": by, "at": now_seconds()}
        if await self.redis.set(self.paused_key, json.dumps(mine), nx=True):
            return mine, True
        return await self.paused() or mine, False

    async def resume(self) -> bool:
        """Resume a paused queue; False if it was not paused."""
        return bool(await self.redis.delete(self.paused_key))

    async def depth(self) -> Depth:
        """The queue's counts, pause record and number of live workers, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(self.queued_key).llen(self.active_key).zcard(self.incomplete_key)
            # A worker's stats entry is scored with its expiry, as SAQ's info() reads it.
            pipe.get(self.paused_key).zcount(self.stats_key, now(), "+inf")
            queued, active, incomplete, paused, workers = await pipe.execute()
        return Depth(
            queued=queued,
            active=active,
            scheduled=max(0, incomplete - queued - active),
            paused=json.loads(paused) if paused else None,
            workers=workers,
        )

    async def paused(self) -> dict | None:
        """``{"by": who, "at": epoch seconds}`` while the queue is paused, else None."""
        raw = await self.redis.get(self.paused_key)
        return json.loads(raw) if raw else None

    # --- workers ----------------------------------------------------------------------------------

    async def forget_worker(self, worker_id: str) -> None:
        """Remove a stopped worker's info now, instead of letting it expire."""
        key = self.namespace(f"worker_info:{worker_id}")
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.delete(key).zrem(self.stats_key, key).execute()


def drop_unstorable(job: Job, cause: BaseException) -> str:
    """Make ``job`` storable after ``cause`` (``JobNotStorable``): its result is dropped, and each
    ``meta`` entry JSON cannot hold. Returns the error to record on the failed attempt."""
    job.result = None
    dropped = []
    for name, value in list(job.meta.items()):
        try:
            json.dumps({name: value}, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            dropped.append(name)
            del job.meta[name]
    note = f" Dropped from meta: {', '.join(map(str, dropped))}." if dropped else ""
    return f"{cause} The attempt failed and is not retried: it would fail the same way.{note}"
