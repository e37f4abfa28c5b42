"""One clock for every process: Redis's.

Workers and web processes run on hosts whose clocks may disagree by minutes. Every time that one
process writes and another compares (heartbeats, the sweep, when a scheduled or delayed job is due,
cron's next run, pause records, worker expiry) is therefore stamped and compared on the Redis
server's clock: by ``TIME`` inside the Lua scripts (``engine/lua/``), or, where Python decides, by
``redis_now_ms`` once per round trip. Job fields keep SAQ's meaning (``queued``, ``started``,
``touched``, ``completed`` in epoch milliseconds, ``scheduled`` in epoch seconds).

Still on the local clock: log lines' timestamps (they say when this process did something), durations
(``time.monotonic``: elapsed time on one host needs no other's), and inline runs, which have no Redis.
"""

from __future__ import annotations

from datetime import UTC, datetime

from saq.job import Job

# Where a job carries a delay to be resolved against Redis's clock when it is enqueued; not a field of
# SAQ's Job, so it is never stored (``scheduled`` is, as the enqueue script computes it).
_DELAY = "_tasks_app_delay_s"


async def redis_now_ms(redis) -> int:
    """Now on Redis's clock, in epoch milliseconds (one ``TIME`` round trip on ``redis``, a redis-py
    asyncio client such as ``queue.redis``). For ages and "how long ago" shown across processes."""
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


def delay(job: Job, seconds: float) -> Job:
    """Make ``job`` due ``seconds`` after Redis receives it (on Redis's clock, not this host's): the
    enqueue script sets its ``scheduled``. Its ``scheduled`` until then is the caller's estimate."""
    setattr(job, _DELAY, float(seconds))
    return job


def delay_of(job: Job) -> float:
    """The delay ``delay`` gave ``job`` (seconds), or 0."""
    return getattr(job, _DELAY, 0.0)


def job_time(millis: float | None) -> datetime | None:
    """A time SAQ keeps on a job (epoch milliseconds, 0 for "not yet") as an aware UTC datetime, or None:
    also for a time no datetime can hold (a record not written by tasks_app), which pages show as unknown."""
    if not millis:
        return None
    try:
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None
