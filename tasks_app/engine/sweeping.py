"""The sweep of an ``AtomicRedisQueue`` (``AtomicRedisQueue.sweep``, SAQ's verb, runs ``sweep`` here), and
the reads that judge a queue's index: ``due_within`` (for a --burst worker) and ``check_consistency``.

Every change the sweep makes is a compare-and-set against the record it read (``engine/lua/``), so
a worker that is alive after all cannot lose its attempt to it. Each ``queue`` is an
``engine.queue.AtomicRedisQueue`` (annotated by its SAQ base: that module imports this one).
"""

from __future__ import annotations

import asyncio
import logging

from saq.job import TERMINAL_STATUSES, Job, Status
from saq.queue.redis import RedisQueue

from . import chains, priorities
from .outages import settle

logger = logging.getLogger("tasks_app.engine")

# A job moved to the active list but never marked ACTIVE is orphaned if it still looks so this much later.
ORPHAN_RECHECK_S = 1.0
# Index entries a sweep checks for a record, at most, GONE_SLICE per script call (lua/upkeep.py's SWEEP_GONE):
# on a queue 200,000 jobs deep one script checking them all held Redis 470 ms, every sweep. Now a sweep holds
# it about 1 ms at a time, and an index larger than GONE_PER_SWEEP is searched over several sweeps.
GONE_SLICE = 250
GONE_PER_SWEEP = 20_000
# List entries the LREMs of one such call may scan (each gone entry is taken off every list: a scan of each),
# at least one gone entry a call. Where a tenth of 100,000 records are gone: at most 3.4 ms of Redis a call,
# 63.7 ms without this bound (bench/deep_queue.py --evicted-depth).
GONE_LIST_BUDGET = 100_000
# Past its timeout, a job is left this long to its own worker (which times it out) before the sweep takes it.
TIMEOUT_GRACE_S = 10.0
# The meta key a worker sets on a job whose cancelled task still runs (a sync task's thread): the sweep's
# timeout rule passes it over while its worker heartbeats it, so it never runs twice at once.
HELD = "held"
# A held job is touched by its worker even without a heartbeat (four times in this, ``Worker._touch_period``):
# silent this long, its worker is gone (SIGKILL) and the sweep takes it, as it would past its timeout.
HELD_SILENCE_S = 30.0


def held_mark(worker_id: str | None, attempt: int) -> dict:
    """The ``meta[HELD]`` of ``worker_id``'s attempt ``attempt``: bound to that attempt, so that a mark left on
    a record (an abort ends it in Redis, a retry or a sweep copies it) says nothing of a later attempt."""
    return {"worker": worker_id, "attempt": attempt, "why": "cancelled; its worker records the outcome once it returns"}


def is_held(job: Job) -> bool:
    """Whether ``job``'s current attempt is held by its worker (``engine/attempts.hold``)."""
    return job.meta.get(HELD) == held_mark(job.worker_id, job.attempts)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def stuck_reason(job: Job, current_ms: int) -> str | None:
    """Why a running ``job`` is orphaned, or None while its worker looks after it.

    A live worker touches each running job well within its ``heartbeat`` (a held one, within
    ``HELD_SILENCE_S`` when it has none); past its ``timeout`` the worker times it out itself, so the
    sweep waits ``TIMEOUT_GRACE_S`` more before taking it, unless it is held.
    """
    held = is_held(job)
    heartbeat = job.heartbeat or (HELD_SILENCE_S if held else 0)
    if heartbeat and job.touched and current_ms - job.touched > heartbeat * 1000:
        silent = (current_ms - job.touched) / 1000
        return f"no heartbeat from worker {job.worker_id} for {silent:.1f}s (heartbeat {heartbeat:g}s)"
    past = job.timeout and job.started and current_ms - job.started > (job.timeout + TIMEOUT_GRACE_S) * 1000
    if past and not held:
        running = (current_ms - job.started) / 1000
        return f"still running {running:.0f}s after starting, past its {job.timeout}s timeout"
    return None


async def sweep(queue: RedisQueue, lock: int = 60) -> list[str]:
    """Resolve active-list entries whose worker is gone; returns the swept job ids.

    At most once per ``lock`` seconds across all workers. Index entries (queued, running,
    scheduled) whose job record no longer exists (a Redis that evicts keys) are removed first,
    each logged once and added to ``evicted``, which the worker counts as lost: up to
    ``GONE_PER_SWEEP`` entries a sweep, the next sweep going on where this one stopped. A job with
    no heartbeat (or far past its timeout) is re-queued while it has attempts left, else ends
    ABORTED; one that was being aborted ends ABORTED.
    """
    found, current_ms, holds_lock = await queue._script(
        "sweep_scan", [queue.sweep_key, queue.active_key, queue.queued_key], [int(lock)]
    )
    swept: list[str] = await _gone(queue) if int(holds_lock) else []
    suspects: list[tuple[bytes, bytes]] = []
    current_ms = int(current_ms)  # Redis's clock, as every heartbeat it judges
    for job_id, raw in found:
        if not raw:
            if await queue._script("drop_entry", [queue.active_key, queue.incomplete_key, job_id], [""]):
                swept.append(_lost(queue, job_id))
            continue
        job = queue.deserialize(raw)
        if job.status in TERMINAL_STATUSES:
            # Ended, yet still listed as running (a write that predates this queue class).
            await queue._script("drop_entry", [queue.active_key, queue.incomplete_key, job_id], [raw])
        elif job.status in (Status.QUEUED, Status.NEW):
            suspects.append((job_id, raw))
        else:
            try:
                reason = stuck_reason(job, current_ms)
            except TypeError:
                # Not written by this queue's API (e.g. heartbeat="30"): judged by no field, so kept
                # from stopping the sweep of every other job, and named for the operator.
                logger.error("Cannot sweep job %s: its record has malformed fields", job.key)
                continue
            if reason and await _sweep_job(queue, raw, job, reason):
                swept.append(_text(job_id))
    if suspects:
        # Moved to the active list, not yet marked ACTIVE: normal for a few milliseconds.
        await asyncio.sleep(ORPHAN_RECHECK_S)
        for job_id, raw in suspects:
            if await queue._script("relist", [queue.active_key, queue.queued_key, job_id], [raw]):
                logger.warning("Swept job %s: taken from the queue by a worker that never started it", job_id)
                swept.append(_text(job_id))
    return swept


async def _gone(queue: RedisQueue) -> list[str]:
    """Up to ``GONE_PER_SWEEP`` more index entries checked for a record (fewer where many are gone: see
    ``GONE_LIST_BUDGET``): the ids found gone, taken off the index and every list.

    Each call's finds are logged and counted (``_lost``) as soon as it returns: a later call that fails
    (Redis gone mid-sweep) must not leave entries taken off that nobody was told of.
    """
    gone: list[str] = []
    keys = [queue.namespace("sweep:cursor"), queue.incomplete_key, queue.queued_key, queue.active_key]
    for _ in range(GONE_PER_SWEEP // GONE_SLICE):
        call = asyncio.ensure_future(queue._script("sweep_gone", keys, [GONE_SLICE, GONE_LIST_BUDGET]))
        try:
            ids, cursor, stopped_early = await asyncio.shield(call)
        except asyncio.CancelledError:
            # A worker stopping cancels its upkeep mid-call; Redis runs the script all the same, so its reply is
            # awaited and what it took off is told of. (A connection lost after the script ran loses the reply.)
            if (reply := await settle(call)) is not None:
                gone += [_lost(queue, job_id) for job_id in reply[0]]
            raise
        gone += [_lost(queue, job_id) for job_id in ids]
        if not int(stopped_early) and _text(cursor) == "0":  # the search went round the whole index
            break
    return gone


async def _sweep_job(queue: RedisQueue, raw: bytes, job: Job, reason: str) -> bool:
    new, delay = queue.deserialize(raw), ""  # ``completed``/``touched`` are stamped by the write
    if job.status == Status.ABORTING:
        new.status = Status.ABORTED
        new.error = f"{job.error or 'aborted'} (ended by the sweep: {reason})"
        outcome = "ended ABORTED (it was being aborted)"
    elif job.retryable:
        queue._reset_for_retry(new, f"swept: {reason}")
        delay = new.next_retry_delay() or ""
        new.scheduled = 0
        outcome = f"re-queued for attempt {job.attempts + 1} of {job.retries}"
    else:
        new.status = Status.ABORTED
        new.error = f"swept: {reason}; no attempts left"
        outcome = "ended ABORTED (no attempts left)"
    written = await queue._replace(raw, new, delay)
    if written is None:
        return False  # it moved on since the scan: its worker is alive after all
    queue.retried += new.status == Status.QUEUED
    queue.aborted += new.status == Status.ABORTED
    logger.warning(
        "Swept job %s (task %s, attempt %d): %s; %s.",
        job.key,
        job.function,
        job.attempts,
        reason,
        outcome,
        extra={"job_key": job.key, "task": job.function, "attempt": job.attempts, "outcome": "swept"},
    )
    if job.status != Status.ABORTING and written.status == Status.ABORTED:
        # This write ended it for good (no attempts left): this process, and no other, calls the hook.
        from ..failures import final_failure  # rare: not imported for the common case

        await final_failure(written)
    return True


async def due_within(queue: RedisQueue, seconds: float) -> bool:
    """Whether any job is queued, running, or scheduled to be due within ``seconds``, for this
    queue's workers to take: never while the queue is paused, and not for an index entry whose
    job record is gone (see ``sweep``). On Redis's clock."""
    return bool(await queue._script("due", [queue.paused_key, queue.incomplete_key], [seconds]))


def _lost(queue: RedisQueue, job_id: bytes | str) -> str:
    job_id = _text(job_id)
    queue.evicted.append(job_id)
    logger.error(
        "Lost job %s: its record no longer exists (evicted? this Redis must not evict: "
        "CONFIG SET maxmemory-policy noeviction); its queue entry is removed.",
        queue.job_key_from_id(job_id),
        extra={"job_key": queue.job_key_from_id(job_id), "outcome": "lost"},
    )
    return job_id


async def check_consistency(queue: RedisQueue) -> dict[str, list[str]]:
    """Scan the whole queue for broken invariants; returns problem -> job keys (empty lists if none).

    - ``unreferenced``: a non-terminal job that no list or schedule refers to (nothing would run it);
    - ``no_ttl``: a terminal job with a positive ``ttl`` whose record never expires;
    - ``dangling``: a list entry whose job record is gone or has ended.

    For tests, benchmarks and debugging: it reads every job.
    """
    levels = [int(level) for level in await queue.redis.zrange(priorities.levels_key(queue.queued_key), 0, -1)]
    queued = set()
    for level in [0, *levels]:
        queued |= {_text(i) for i in await queue.redis.lrange(priorities.level_key(queue.queued_key, level), 0, -1)}
    for name in await queue.redis.zrange(f"{queue.queued_key}:limited", 0, -1):  # parked by their limits
        queued |= {_text(i) for i in await queue.redis.lrange(f"{queue.queued_key}:waiting:{_text(name)}", 0, -1)}
    queued.discard(priorities.wake_key(queue.queued_key))  # a wake-up entry (priorities), not a job
    active = {_text(i) for i in await queue.redis.lrange(queue.active_key, 0, -1)}
    incomplete = {_text(i) for i in await queue.redis.zrange(queue.incomplete_key, 0, -1)}
    listed, referenced = queued | active, queued | active | incomplete
    report: dict[str, list[str]] = {"unreferenced": [], "no_ttl": [], "dangling": []}
    seen: set[str] = set()
    async for job in queue.iter_jobs(batch_size=500):
        seen.add(job.id)
        if job.status in TERMINAL_STATUSES:
            if job.ttl > 0 and await queue.redis.ttl(job.id) == -1:
                report["no_ttl"].append(job.key)
            if job.id in listed:
                report["dangling"].append(job.key)
        elif job.id not in referenced and not chains.waiting(job):  # a waiting step: its parents queue it
            report["unreferenced"].append(job.key)
    report["dangling"] += [queue.job_key_from_id(i) for i in referenced - seen]
    return report
