"""SAQ's ``listen`` (``Job.refresh(until_complete=...)``, ``apply`` and ``map`` wait through it), with a
message taken as a wake-up and the job's stored record as the truth.

- **A channel is server-wide.** Redis's Pub/Sub knows no databases: a job with the same key in another
  database of the same server (another site, another test run) publishes on the same channel. Its
  "complete" would end a wait for a job still running here.
- **A message may be overtaken**, by a read of the record (below) or by the job's next change.
- **A message may never come.** SAQ's multiplexer sends its PSUBSCRIBE from a task of its own once the
  first listener waits; a change published before Redis has it is lost (``Job.refresh(until_complete=0)``
  of a job that ended at once waited for ever: SAQ's test_burst_poll_interval, in CI). So every
  ``poll_interval`` seconds without a message, each job's record is read.

So each status given is one the job's record bore when read, or a message's for a job whose record is
gone (finished with a negative ttl: nothing to check it against). A change given from a read is not
given again when its message comes; a message repeating the record's status is (SAQ's ``update``
publishes the status a job has, and SAQ's listeners hear it). Each ``queue`` is an
``engine.queue.AtomicRedisQueue`` (annotated by its SAQ base: that module imports this one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from saq.job import Status
from saq.queue.redis import RedisQueue

Callback = Callable[[str, Status], "bool | Awaitable[bool | None] | None"]


async def listen(
    queue: RedisQueue,
    job_keys: Iterable[str],
    callback: Callback,
    timeout: float | None = 10,  # noqa: ASYNC109 (SAQ's signature)
    poll_interval: float = 0.5,
) -> None:
    """``callback(job_key, status)`` (sync or async) for each change of the jobs, until it returns True.

    ``timeout`` (s; 0 or None: none) raises ``TimeoutError``. ``poll_interval`` (s; 0, SAQ's "no polling":
    its default 0.5) is how long without a message before the records are read.
    """
    keys = list(job_keys)
    if not keys:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout if timeout else None
    poll_interval = poll_interval if poll_interval > 0 else 0.5
    last: dict[str, Status] = {}  # the status the callback was last given, per key
    read: dict[str, Status] = {}  # given from a record, before the message of that change came
    messages = await queue._pubsub.subscribe(*(queue.job_id(key) for key in keys))
    try:
        while True:
            wait = poll_interval if deadline is None else min(poll_interval, deadline - loop.time())
            if wait <= 0:
                raise TimeoutError
            try:
                message = await asyncio.wait_for(messages.get(), wait)
            except TimeoutError:
                stored = zip(keys, await queue.jobs(keys), strict=True)
                changes = [(key, job.status) for key, job in stored if job and last.get(key) != job.status]
                read.update(changes)
            else:
                changes = await _heard(queue, message, last, read)
            for key, status in changes:
                last[key] = status
                stop = callback(key, status)
                if asyncio.iscoroutine(stop):
                    stop = await stop
                if stop:
                    return
    finally:
        await queue._pubsub.unsubscribe(messages)


async def _heard(
    queue: RedisQueue, message: dict, last: dict[str, Status], read: dict[str, Status]
) -> list[tuple[str, Status]]:
    """What one message gives: the message's status if the record bears it (unless that change was given
    from a read already), else the record's status if it is new to the callback; [] otherwise."""
    key = queue.job_key_from_id(message["channel"])
    status = _status(message["data"])
    job = (await queue.jobs([key]))[0]
    if job is None:
        return [(key, status)] if status else []
    if job.status == status:
        return [] if read.pop(key, None) == status else [(key, status)]
    if last.get(key) == job.status:
        return []
    read[key] = job.status
    return [(key, job.status)]


def _status(data: bytes | str) -> Status | None:
    """A message's status, or None for anything else published on a job's channel (by anyone)."""
    text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
    try:
        return Status(text)
    except ValueError:
        return None
