"""SAQ's ``listen`` (``Job.refresh(until_complete=...)``, ``apply`` and ``map`` wait through it), with a
message taken as a wake-up and the job's stored record as the truth.

- **A channel is server-wide.** Redis's Pub/Sub knows no databases: a job with the same key in another
  database of the same server (another site, another test run) publishes on the same channel. Its
  "complete" would end a wait for a job still running here.
- **A message may be overtaken**, by a read of the record (below) or by the job's next change.
- **A message may never come.** SAQ's multiplexer sends its PSUBSCRIBE from a task of its own once the
  first listener waits; a change published before Redis has it is lost (``Job.refresh(until_complete=0)``
  of a job that ended at once waited for ever: SAQ's test_burst_poll_interval, in CI). So the records
  are read at once, and again every ``poll_interval`` seconds, whatever messages come meanwhile.

So each status given is one the job's record bore when read, with two exceptions, where the record
cannot bear it: a message for a job whose record is gone (finished with a negative ttl), and the end of
the run waited for once its key holds a new run (work enqueued under the key as it ended: a message
of the old run's end is given, and its other messages are not). A change given from a read is not
given again when its message comes; a message repeating the record's status is (SAQ's ``update``
publishes the status a job has, and SAQ's listeners hear it). Each ``queue`` is an
``engine.queue.AtomicRedisQueue`` (annotated by its SAQ base: that module imports this one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from saq.job import TERMINAL_STATUSES, Job, Status
from saq.queue.redis import RedisQueue

Callback = Callable[[str, Status], "bool | Awaitable[bool | None] | None"]


@dataclass
class _Heard:
    """What one ``listen`` knows of each key."""

    last: dict[str, Status] = field(default_factory=dict)  # the status the callback was last given
    read: dict[str, Status] = field(default_factory=dict)  # given from a record, before that change's message
    runs: dict[str, int] = field(default_factory=dict)  # the run waited for: its record's ``queued`` stamp
    replaced: set[str] = field(default_factory=set)  # a read found a new run under the key, its old end unheard


async def listen(
    queue: RedisQueue,
    job_keys: Iterable[str],
    callback: Callback,
    timeout: float | None = 10,  # noqa: ASYNC109 (SAQ's signature)
    poll_interval: float = 0.5,
) -> None:
    """``callback(job_key, status)`` (sync or async) for each change of the jobs, until it returns True.

    ``timeout`` (s; 0 or None: none) raises ``TimeoutError``. ``poll_interval`` (s; 0, SAQ's "no polling":
    its default 0.5) is how often the records are read.
    """
    keys = list(job_keys)
    if not keys:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout if timeout else None
    poll_interval = poll_interval if poll_interval > 0 else 0.5
    heard = _Heard()
    messages = await queue._pubsub.subscribe(*(queue.job_id(key) for key in keys))
    try:
        next_read = loop.time()  # at once: the runs waited for, and what changed before the subscription
        while True:
            now = loop.time()
            if deadline is not None and now >= deadline:
                raise TimeoutError
            if now >= next_read:
                next_read = now + poll_interval
                changes = _read(heard, keys, await queue.jobs(keys))
            else:
                wait = next_read - now if deadline is None else min(next_read, deadline) - now
                try:
                    message = await asyncio.wait_for(messages.get(), wait)
                except TimeoutError:
                    continue
                changes = await _message(queue, heard, message)
            for key, status in changes:
                heard.last[key] = status
                stop = callback(key, status)
                if asyncio.iscoroutine(stop):
                    stop = await stop
                if stop:
                    return
    finally:
        await queue._pubsub.unsubscribe(messages)


def _read(heard: _Heard, keys: list[str], jobs: list[Job | None]) -> list[tuple[str, Status]]:
    """The records' statuses new to the callback. A key whose run was replaced since it was read gives
    nothing for one read (its old run's end may be a message on its way); then its new run is followed."""
    changes = []
    for key, job in zip(keys, jobs, strict=True):
        if job is None:
            continue
        if _new_run(heard, key, job):
            if key not in heard.replaced:
                heard.replaced.add(key)
                continue
            heard.replaced.discard(key)
            heard.runs[key] = job.queued
        if heard.last.get(key) != job.status:
            heard.read[key] = job.status
            changes.append((key, job.status))
    return changes


async def _message(queue: RedisQueue, heard: _Heard, message: dict) -> list[tuple[str, Status]]:
    """What one message gives: the message's status if the record bears it (unless that change was given
    from a read already), or if it ends the run waited for, now replaced; else the record's status if it
    is new to the callback; [] otherwise."""
    key = queue.job_key_from_id(message["channel"])
    status = _status(message["data"])
    job = (await queue.jobs([key]))[0]
    if job is None:
        return [(key, status)] if status else []
    if _new_run(heard, key, job):  # the run waited for has ended, and a new one holds the key
        if status not in TERMINAL_STATUSES:
            return []  # a change of the old run overtaken by its end, or another database's
        heard.runs[key] = job.queued
        heard.replaced.discard(key)
    elif job.status != status:  # stale, or another database's: the record's own status, if new
        if heard.last.get(key) == job.status:
            return []
        heard.read[key] = job.status
        return [(key, job.status)]
    return [] if heard.read.pop(key, None) == status else [(key, status)]


def _new_run(heard: _Heard, key: str, job: Job) -> bool:
    """Whether ``job`` (the key's record) is another run than the one waited for: its ``queued`` stamp
    differs. A chain step waiting for its parents (NEW) is stamped again when they queue it: the same run."""
    run = heard.runs.setdefault(key, job.queued)
    if job.queued == run:
        return False
    if heard.last.get(key) == Status.NEW:
        heard.runs[key] = job.queued
        return False
    return True


def _status(data: bytes | str) -> Status | None:
    """A message's status, or None for anything else published on a job's channel (by anyone)."""
    text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
    try:
        return Status(text)
    except ValueError:
        return None
