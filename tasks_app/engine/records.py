"""What code outside the engine does to an ``RedisQueue``'s jobs beyond SAQ's verbs: enqueue with
its outcome, abort with an audit note, a compare-and-set of one record, and bulk changes.

Each write is one Lua compare-and-set (``engine/lua/records.py``), its times stamped on Redis's clock.
Each ``queue`` is an ``engine.queue.AtomicRedisQueue`` (annotated by its SAQ base: that module imports
this one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence

from saq.job import TERMINAL_STATUSES, Job, Status
from saq.queue.redis import RedisQueue

from ..exceptions import JobStateConflict
from . import replication

# How often a compare-and-set re-reads a job that changed under it (e.g. a heartbeat) before giving up.
CAS_ATTEMPTS = 8
# The job meta entry holding the token of the outbox row that carries the job (a random 32-digit hex,
# ``enqueueing/outbox.py``). Given it, the enqueue script answers "exists" with the job this row already
# wrote, whether it is still pending or has ended (while its record is kept: its ``ttl``), so a row
# delivered twice (by its commit and by a worker's drain) never runs its job twice.
OUTBOX_TOKEN = "outbox"


def ready(queue: RedisQueue, job: Job) -> None:
    """Mark ``job`` as enqueued on ``queue`` (its ``queued`` time is stamped by Redis when it gets there);
    raises ``ValueError`` for a job of another queue."""
    if job.queue and job.queue.name != queue.name:
        raise ValueError(f"Job {job.key} belongs to queue {job.queue.name!r}, not {queue.name!r}.")
    job.queue, job.status = queue, Status.QUEUED


def enqueue_call(queue: RedisQueue, job: Job) -> tuple[list, list]:
    """The enqueue script's KEYS and ARGV for a ``ready`` job: what ``submit`` sends, for a client of
    its own (a blocking one) to send with EVALSHA of ``queue``'s script. Raises ``JobNotStorable``."""
    return queue._enqueue_call(job)


def enqueue_script(queue: RedisQueue) -> tuple[str, str]:
    """``(sha, Lua source)`` of ``queue``'s enqueue script, for a client of its own to EVALSHA (and load)."""
    script = queue._scripts["enqueue"]
    return script.sha, script.script


def enqueued(queue: RedisQueue, job: Job, reply: list) -> tuple[Job, str]:
    """The enqueue script's ``reply`` as ``submit`` returns it: ``(job, state)``, the job's ``queued``
    and ``scheduled`` set to what Redis stamped."""
    return queue._enqueued(job, reply)


async def submit(queue: RedisQueue, job: Job) -> tuple[Job, str]:
    """Enqueue ``job``: ``(job, "queued")``; ``(job, "deferred")`` when a job of the same key is
    being aborted (the new one is queued the moment that one ends); or ``(pending job, "exists")``
    when a job of that key is queued, scheduled or running, or new work already waits for it. A
    debounced job (``engine/debounce.py``) may also get ``(job, "debounced")``: it replaced the
    record of the queued job of its key; or ``(job, "deferred")``: it waits for the running one.
    The job's ``queued`` (and, for a ``clock.delay``, ``scheduled``) are Redis's times.

    Raises ``ValueError`` for a job of another queue.
    """
    ready(queue, job)
    await queue._before_enqueue(job)
    return await queue._submit(job)


async def submit_over(queue: RedisQueue, raw: bytes | None, job: Job) -> Job | None:
    """Enqueue ``job`` in place of the ended job whose record was read as ``raw`` (None: no record was
    there), if the record is still that: one compare-and-set, so a writer that stalled since its read (a
    paused host) cannot put back work another process has written, run and ended meanwhile. Returns the
    job as written (``queued`` is the caller's ``job.queued``, epoch ms, as Redis's clock said when it
    read), or None if the record changed. Raises ``ValueError`` for a job of another queue."""
    ready(queue, job)
    await queue._before_enqueue(job)
    return await queue._replace(raw or b"", job)


async def submit_many(queue: RedisQueue, jobs: Sequence[Job]) -> list[tuple[Job, str]]:
    """``submit`` for many jobs in one pipeline (one round trip); results in order."""
    for job in jobs:
        ready(queue, job)
        await queue._before_enqueue(job)
    script = queue._scripts["enqueue"]
    async with queue.redis.pipeline(transaction=False) as pipe:
        for job in jobs:
            keys, args = queue._enqueue_call(job)
            await script(keys=keys, args=args, client=pipe)
        replies = await replication.execute(queue, pipe)
    return [queue._enqueued(job, reply) for job, reply in zip(jobs, replies, strict=True)]


async def request_abort(
    queue: RedisQueue, key: str, error: str, annotate: Callable[[Job], None] | None = None
) -> tuple[Job | None, bool]:
    """Abort the job with ``key``: a queued or scheduled one ends ABORTED at once; a running one
    becomes ABORTING and its worker cancels it within a second (or the sweep ends it, if that
    worker is gone). A job that already ended, or is already being aborted, is left as it is.

    ``annotate`` may add to the job (e.g. an audit trail) in the same write. Returns
    ``(job after, True)``, ``(job as it is, False)``, or ``(None, False)`` for no such job.
    ``completed`` is stamped by the write.
    """

    def change(current: Job) -> Job | None:
        if current.status in TERMINAL_STATUSES or current.status == Status.ABORTING:
            return None
        current.error = error
        current.status = Status.ABORTING if current.status == Status.ACTIVE else Status.ABORTED
        if annotate is not None:
            annotate(current)
        return current

    result, changed = await compare_and_set(queue, key, change)
    if changed and result.status == Status.ABORTED:
        queue.aborted += 1
    return result, changed


async def compare_and_set(queue: RedisQueue, key: str, change: Callable[[Job], Job | None]) -> tuple[Job | None, bool]:
    """Apply ``change`` to the stored job with ``key`` atomically.

    ``change`` gets a fresh copy of the stored job and returns it modified, or None for "leave it".
    The write happens only if the stored record is still the one read; otherwise it is read again
    and ``change`` called again. A job made QUEUED is due at its ``scheduled`` if that is still ahead
    on Redis's clock, else at once. Returns ``(job after, True)``, ``(stored job, False)`` when
    ``change`` declined, or ``(None, False)`` when no such job exists.
    Raises ``JobStateConflict`` if the job kept changing under it.
    """
    current = None
    for _ in range(CAS_ATTEMPTS):
        raw = await queue.redis.get(queue.job_id(key))
        if raw is None:
            return None, False
        current = queue.deserialize(raw)
        new = change(queue.deserialize(raw))
        if new is None:
            return current, False
        written = await queue._replace(raw, new)
        if written is not None:
            return written, True
    raise JobStateConflict(key, "changed", current)


async def change_attempt(queue: RedisQueue, worker_id: str | None, job: Job, change: Callable[[Job], None]) -> None:
    """Apply ``change`` to the stored record of ``job``'s attempt by ``worker_id`` (running or being aborted),
    by one compare-and-set on that record: writing the worker's copy over it would drop what others wrote
    meanwhile (an abort's reason, its audit). No-op once the attempt is not that one, or has ended."""

    def changed(stored: Job) -> Job | None:
        if (stored.worker_id, stored.attempts) != (worker_id, job.attempts):
            return None
        if stored.status not in (Status.ACTIVE, Status.ABORTING):
            return None
        change(stored)
        return stored

    await compare_and_set(queue, job.key, changed)


async def records(
    queue: RedisQueue, keep: Callable[[Job], bool], batch: int = 1000
) -> AsyncIterator[tuple[bytes, Job]]:
    """``(stored record, job)`` of every job of ``queue`` for which ``keep(job)`` is true."""
    cursor = 0
    while True:
        cursor, ids = await queue.redis.scan(cursor=cursor, match=queue.job_id("*"), count=batch)
        if ids:
            for raw in await queue.redis.mget(ids):
                job = queue.deserialize(raw) if raw else None
                if job is not None and keep(job):
                    yield raw, job
        if not cursor:
            return


async def change_many(
    queue: RedisQueue, found: Iterable[tuple[bytes, Job]], change: Callable[[Job], Job | None]
) -> int:
    """Apply ``change`` to each job found (a fresh copy; None leaves it), each write a record
    compare-and-set against the record found, 500 per round trip. A job that changed since it
    was found is left alone. Returns how many were changed."""
    return await _many(
        queue, found, change, lambda raw, new: ("replace", queue._keys(new), queue._replace_args(raw, new))
    )


async def delete_many(queue: RedisQueue, found: Iterable[tuple[bytes, Job]]) -> int:
    """Delete each job found, unless it changed since; 500 per round trip. Returns how many went."""
    return await _many(queue, found, lambda job: job, lambda raw, job: ("delete_if_unchanged", [job.id], [raw]))


async def _many(queue: RedisQueue, found, change, call) -> int:
    done = 0
    chunk: list = []

    async def flush() -> int:
        async with queue.redis.pipeline(transaction=False) as pipe:
            for name, keys, args in chunk:
                await queue._scripts[name](keys=keys, args=args, client=pipe)
            replies = await replication.execute(queue, pipe)
        chunk.clear()
        return sum(1 for reply in replies if reply == 1 or (isinstance(reply, list) and reply[0] in (b"ok", "ok")))

    for raw, _ in found:
        new = change(queue.deserialize(raw))
        if new is None:
            continue
        chunk.append(call(raw, new))
        if len(chunk) >= 500:
            done += await flush()
    if chunk:
        done += await flush()
    return done
