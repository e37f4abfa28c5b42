"""``AtomicRedisQueue``: SAQ's Redis queue in which every job state change is one compare-and-set.

SAQ's own ``RedisQueue`` writes a job's new status without looking at the current one,
so a worker finishing a job, the sweep and an abort can overwrite each other, and a job
can end in two states or in none. Here each change is one Lua script (``engine/lua/``)
that checks the stored state first, and stamps its times on Redis's clock (``engine/clock.py``):

=====================  ==========================================  ===================================
change                 from                                        who
=====================  ==========================================  ===================================
enqueue                no job, or a terminal one (else: that job;  ``enqueue``, ``records.submit``
                       an ABORTING one: the new job waits for it;
                       debounced: see ``engine/debounce.py``)
take                   QUEUED -> ACTIVE, attempts + 1              a worker (``attempts.take``)
touch (heartbeat)      ACTIVE/ABORTING held by this attempt        its worker (``attempts.touch``)
finish                 ACTIVE/ABORTING/QUEUED held by the attempt  its worker (``finish``)
retry, re-queue        ACTIVE held by the attempt -> QUEUED        its worker; ABORTING -> ABORTED
abort                  QUEUED -> ABORTED, ACTIVE -> ABORTING       anyone (``abort``)
end an abort           ABORTING held by the attempt -> ABORTED     its worker (``finish_abort``)
sweep                  ACTIVE/ABORTING with no heartbeat -> QUEUED  any worker (``sweep``)
                       (attempts left) or ABORTED
enqueue a chain        no job of any step's key: first steps       ``chains.submit``
                       QUEUED, the others NEW (on no list)
a chain step ends      in the write that ends it (finish, abort,    that write (``engine/chains.py``)
                       sweep): a NEW child -> QUEUED once all its
                       parents completed, else FAILED/ABORTED
=====================  ==========================================  ===================================

The public surface is SAQ's ``Queue`` API. Everything else is private to ``engine/``: the functions
of ``engine/records.py`` (enqueue with its outcome, record compare-and-sets, bulk changes) and
``engine/pausing.py`` (pause, resume, depth) are what code outside the engine calls.

A terminal job (complete, failed, aborted) is never written again, except by enqueueing
its key anew. Every non-terminal job is referenced by the queue's lists, so the sweep
can always resolve it; terminal jobs expire after their ``ttl``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque

from saq.job import TERMINAL_STATUSES, Job, Status
from saq.queue.redis import RedisQueue

from ..exceptions import JobStateConflict
from . import chains, clock, debounce, listening, lua, priorities, records, replication, storage, sweeping
from .pipelining import AutoPipeline
from .storage import PIECES

logger = logging.getLogger("tasks_app.engine")

TAIL, HEAD, SCHEDULED = "tail", "head", "none"
# Due scheduled jobs moved to the queued list per Redis call (``schedule``): 100,000 jobs due at once held
# Redis 1.1 s in one call (bench/deep_queue.py).
SCHEDULE_SLICE = 100


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class AtomicRedisQueue(RedisQueue):
    """SAQ's ``RedisQueue`` with atomic, state-checked transitions (see the module docstring).

    Jobs are stored as JSON with a fixed header (``engine/storage.py``), so ``dump`` and ``load``
    cannot be changed. Key names are SAQ's, so SAQ's own tools (``saq`` CLI, its web UI) read the
    same queues.
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
        self._scripts = {
            name: redis.register_script(lua.source(name, header_first=PIECES["header_first"])) for name in lua.NAMES
        }
        # Ids of jobs the sweep found gone (their index entries removed), for the worker to count after each
        # sweep. Bounded for a caller that never drains it, above what one sweep may find (GONE_PER_SWEEP).
        self.evicted: deque[str] = deque(maxlen=2 * sweeping.GONE_PER_SWEEP)
        self._pipeline = AutoPipeline(redis, {script.sha: script.script for script in self._scripts.values()})

    async def disconnect(self) -> None:
        await self._pipeline.disconnect()
        await super().disconnect()

    def serialize(self, job: Job) -> str:
        """The job as JSON whose first fields are its state and times (``engine/storage.py``)."""
        return storage.serialize(job)

    def _successor_key(self, job_key: str) -> str:
        # Where work enqueued under the key of an aborting job waits for it to end.
        return self.namespace(f"successor:{job_key}")

    def _keys(self, job: Job) -> list[str]:
        return [job.id, self.active_key, self.incomplete_key, self.queued_key, self._successor_key(job.key)]

    async def _script(self, name: str, keys: list, args: list, gather: bool = False, durable: bool | None = None):
        # Not through redis-py's Script wrapper, which costs more than the no-op job it runs for:
        # pipelined on a connection of the queue's own (engine/pipelining.py). ``durable``: whether the
        # write puts a job on the queue (wait_replicas waits for those only); None: by the script's name.
        if durable is None:
            durable = name in replication.DURABLE_SCRIPTS
        if durable and self.durability is not None:
            return await self.durability.script(self, name, keys, args)
        if not PIECES["pipelining"]:
            return await self._scripts[name](keys=keys, args=args)  # redis-py's own, for bench/pieces.py
        return await self._pipeline.evalsha(self._scripts[name].sha, keys, args, gather)

    def _stored(self, reply: list) -> Job | None:
        return self.deserialize(reply[1]) if len(reply) > 1 and reply[1] else None

    # --- enqueue ----------------------------------------------------------------------------------

    def _enqueue_call(self, job: Job) -> tuple[list, list]:
        keys = [job.id, self.incomplete_key, self.queued_key, self._successor_key(job.key)]
        args = [self.serialize(job), job.scheduled or 0, clock.delay_of(job)]
        if job.meta:  # a plain job's meta is empty: no look-up on the hot path
            token, window = job.meta.get(records.OUTBOX_TOKEN), debounce.args(job)
            if token or window:
                args += [token or "", *window]
        return keys, args

    def _enqueued(self, job: Job, reply: list) -> tuple[Job, str]:
        # The enqueue script's reply: the job as stamped (queued, scheduled), or the pending one.
        state = _text(reply[0])
        if state == "exists":
            return self.deserialize(reply[1]), state
        job.queued, job.scheduled = int(reply[1]), int(float(reply[2]))
        return job, state

    async def _submit(self, job: Job) -> tuple[Job, str]:
        return self._enqueued(job, await self._script("enqueue", *self._enqueue_call(job)))

    async def _enqueue(self, job: Job) -> Job | None:
        # SAQ's contract: the job if it was enqueued (or waits for its aborting namesake), else None.
        job, state = await self._submit(job)
        return None if state == "exists" else job

    # --- an attempt's writes ----------------------------------------------------------------------

    @staticmethod
    def _same_attempt(stored: Job | None, job: Job) -> bool:
        # The start too: the next job of the same key, taken by the same worker, has the same attempt number.
        return (
            stored is not None
            and stored.worker_id == job.worker_id
            and stored.attempts == job.attempts
            and stored.started == job.started
        )

    async def _requeue_after_delay(self, job: Job, owner: str | None) -> Status:
        delay = job.next_retry_delay()
        return await self._requeue(job, SCHEDULED if delay else TAIL, delay or 0, owner)

    @staticmethod
    def _reset_for_retry(job: Job, error: str | None) -> None:
        # ``touched`` is stamped by the script that writes it back.
        job.status, job.error = Status.QUEUED, error
        # A queued job belongs to no worker, so a late write from the last one is refused.
        job.worker_id = None
        job.completed = job.started = 0
        job.progress = 0.0
        job.meta.pop(sweeping.HELD, None)  # the attempt it marked is over

    async def _requeue(
        self, job: Job, push: str, delay: float, owner: str | None, expected_attempts: int | None = None
    ) -> Status:
        """Write ``job`` back on the queue, due ``delay`` seconds from now for push SCHEDULED, if the
        attempt is still ``owner``'s (``expected_attempts``)."""
        attempts = job.attempts if expected_attempts is None else expected_attempts
        reply = await self._script(
            "requeue",
            self._keys(job),
            [
                self.serialize(job),
                delay,
                push,
                "active,queued",
                owner or "",
                attempts,
                job.ttl,
                *chains.args(self, job),
            ],
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

    async def _finish_cas(
        self, job: Job, status: Status | str, script: str = "finish", started: int | None = None
    ) -> list:
        # SAQ's HTTP proxy passes statuses as plain strings. A worker's finish-and-take may share a
        # write with its other slots': its order against other commands does not matter. ``started``:
        # the attempt's start, checked too (lua/attempts.py's FINISH; this engine's worker gives it).
        args = [self.serialize(job), Status(status).value, job.ttl, "active,aborting,queued", job.worker_id or "",
                job.attempts, *chains.args(self, job)]  # fmt: skip
        if started is not None:
            args += [""] * (7 - len(args)) + [started]  # after the links key, "" for a job of no chain
        return await self._script(script, [*self._keys(job), self.paused_key], args, gather=script == "finish_and_take")

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
            await records.request_abort(self, job.key, job.error or "abort")
            return
        if status is not None:
            job.status = Status(status)
        args = [self.serialize(job), Status(status).value if status else "", job.worker_id or "", job.attempts]
        reply = await self._script("update", [job.id, self.active_key, self.queued_key], args)
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
            job.completed = int(reply[1])
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
        reply = await self._script(
            "end_abort", self._keys(job), [job.worker_id or "", job.attempts, job.ttl, *chains.args(self, job)]
        )
        stored = self._stored(reply)
        if _text(reply[0]) != "aborted":
            if stored is not None and stored.status == Status.ABORTED:
                self.aborted += count and self._same_attempt(stored, job)  # this attempt's, written by an earlier try
                job.replace(stored)
                return job  # already ended (e.g. twice through SAQ's own worker): nothing to do
            raise JobStateConflict(job.key, Status.ABORTED.value, stored)
        job.replace(stored)
        self.aborted += count
        return job

    async def abort(self, job: Job, error: str, ttl: float = 5) -> Status:
        """SAQ's ``abort``, atomic: see ``records.request_abort``. Returns the job's status afterwards
        (also set on ``job``); raises ``JobStateConflict`` if the job no longer exists."""
        result, _ = await records.request_abort(self, job.key, error)
        if result is None:
            raise JobStateConflict(job.key, Status.ABORTED.value, None)
        job.replace(result)
        return result.status

    # --- record compare-and-set (``engine/records.py`` decides; this writes) -----------------------

    async def _replace(self, raw: bytes, new: Job, delay: float | str = "") -> Job | None:
        """Write ``new`` over the record ``raw`` if it is still that; returns the job as written (its times
        stamped), or None if the record changed. A queued ``new`` is due ``delay`` seconds from now."""
        # Only a rewrite that queues the job (a retry, a re-queue) waits for replicas: a progress report, an
        # abort or an outcome does not put work on the queue.
        queues_it = Status(new.status) == Status.QUEUED
        reply = await self._script("replace", self._keys(new), self._replace_args(raw, new, delay), durable=queues_it)
        return self.deserialize(reply[1]) if _text(reply[0]) == "ok" else None

    def _replace_args(self, raw: bytes, new: Job, delay: float | str = "") -> list:
        return [raw, self.serialize(new), new.status.value, new.ttl, delay, *chains.args(self, new)]

    async def listen(self, job_keys, callback, timeout: float | None = 10, poll_interval: float = 0.5) -> None:  # noqa: ASYNC109
        """SAQ's ``listen``, each message checked against the job's record: see ``engine/listening.py``."""
        await listening.listen(self, job_keys, callback, timeout, poll_interval)

    async def count(self, kind) -> int:
        """SAQ's ``count``; ``queued`` counts the jobs of every priority (``engine/priorities.py``)."""
        if kind != "queued":
            return await super().count(kind)
        keys = [self.queued_key, self.active_key, self.incomplete_key, self.paused_key, self.stats_key]
        return (await self._script("depth", keys, []))[0]

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:  # noqa: ASYNC109 (SAQ's signature)
        """SAQ's ``dequeue`` (its own Worker's take), passing over the wake-up entry that an enqueue pushes on
        an empty queued list for this class's workers (``engine/priorities.py``): SAQ would return None for
        it while a job waits behind it (a --burst SAQ worker then ends), and leave it in the active list."""
        wake = priorities.wake_key(self.queued_key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            job_id = await self.redis.blmove(self.queued_key, self.active_key, timeout, "LEFT", "RIGHT")
            if job_id is None:
                return None
            if _text(job_id) != wake:
                return await self._get_job_by_id(job_id)
            await self.redis.lrem(self.active_key, 1, job_id)
            if timeout:  # 0: block for ever, as SAQ's
                timeout = deadline - loop.time()
                if timeout <= 0:
                    return None

    # --- schedule, sweep, worker info -------------------------------------------------------------

    async def schedule(self, lock: int = 1) -> list[str]:
        """Queue the scheduled jobs that are due on Redis's clock; returns their ids. At most once per
        ``lock`` seconds across all workers (0: no lock). ``SCHEDULE_SLICE`` jobs per Redis call."""
        keys = [self.schedule_key, self.incomplete_key, self.queued_key]
        due = await self._script("schedule", keys, [int(lock), SCHEDULE_SLICE])
        moved = list(due)
        while len(due) == SCHEDULE_SLICE:  # more may be due; this tick holds the lock already
            due = await self._script("schedule", keys, [0, SCHEDULE_SLICE])
            moved += due
        return [_text(job_id) for job_id in moved]

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        """SAQ's sweep, as compare-and-sets: see ``engine/sweeping.py``. ``abort`` is accepted for
        SAQ's signature: nothing is waited for, each change is checked against what was read."""
        return await sweeping.sweep(self, lock)

    async def write_worker_info(self, worker_id: str, info, ttl: int) -> None:
        """SAQ's, with the worker's expiry on Redis's clock (a worker host's may be minutes off)."""
        key = self.namespace(f"worker_info:{worker_id}")
        await self._scripts["worker_info"](keys=[key, self.stats_key], args=[json.dumps(info), int(ttl)])
