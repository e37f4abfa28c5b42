"""The worker's side of the metrics: count attempts in memory, add the counts to Redis now and then.

Redis holds, per queue, one hash (``saq:<queue>:metrics``) whose fields are JSON arrays:

- ``["attempts", task, outcome]``: attempts that ended with that outcome (an integer);
- ``["duration", task, le]``: attempts that took at most ``le`` seconds and more than the bucket
  below (an integer; ``le`` as Prometheus writes it, "+Inf" last);
- ``["duration_sum", task]``: their total duration in seconds (a float).

Only ever incremented, never reset or expired: the sums are Prometheus counters.

Beside it, for the dashboard's chart of the last hour, one small hash per minute
(``saq:<queue>:activity:<epoch minute>``, expiring after ``ACTIVITY_KEEP_S``) counts the attempts
that ended in that minute as ``complete``, ``failed`` (timeouts included) or ``retried``. The minute
is the worker's clock when the attempt ended. A task name that
is not registered (a job written to Redis by something else) counts as ``OTHER_TASK``, so what
Redis holds cannot add label values without bound.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from prometheus_client.utils import floatToGoString
from saq.job import Job

from ..engine.clock import redis_now_ms
from ..engine.queue import AtomicRedisQueue
from ..engine.worker import Upkeep
from ..signals import WorkerAddOn

logger = logging.getLogger("tasks_app.metrics")

# Job durations range from milliseconds to the default timeout (300 s) and beyond.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
           1800.0, math.inf)  # fmt: skip
OUTCOMES = ("complete", "failed", "timeout", "retrying", "timeout-retrying", "aborted", "requeued", "lost",
            "unknown")  # fmt: skip
OTHER_TASK = "(unregistered)"

ATTEMPTS, DURATION, DURATION_SUM, MINUTE = "attempts", "duration", "duration_sum", "minute"
# Outcome -> the dashboard chart's series.
ACTIVITY = {"complete": "complete", "failed": "failed", "timeout": "failed", "retrying": "retried",
            "timeout-retrying": "retried"}  # fmt: skip
ACTIVITY_KEEP_S = 2 * 3600


def activity_key(queue: AtomicRedisQueue, minute: int) -> str:
    return queue.namespace(f"activity:{minute}")


def metrics_key(queue: AtomicRedisQueue) -> str:
    return queue.namespace("metrics")


def parse_field(raw: bytes | str) -> tuple[str, ...] | None:
    """The parts of a hash field, or None for one this module did not write."""
    try:
        parts = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(parts, list) or not all(isinstance(part, str) for part in parts):
        return None
    return tuple(parts)


_LE = tuple(floatToGoString(bound) for bound in BUCKETS)


class AttemptRecorder:
    """Counts one worker's attempts (``observe``, a ``Worker`` observer) and adds them to Redis
    (``flush``, an upkeep chore; ``on_shutdown``, a shutdown hook, for the last ones)."""

    def __init__(self, queue: AtomicRedisQueue, tasks: Iterable[str]) -> None:
        self.queue = queue
        self.tasks = frozenset(tasks)
        # Keyed by the parts of their hash fields (see the module docstring), which only ``flush``
        # encodes: json.dumps(("attempts", task, outcome)) is the field '["attempts", task, outcome]'.
        self.counts: Counter[tuple[str, ...]] = Counter()
        self.sums: defaultdict[tuple[str, ...], float] = defaultdict(float)
        # Redis's clock minus this host's (s), read at each flush: the minute an attempt is counted in
        # is Redis's, which the dashboard's chart reads, even on a host whose clock is off.
        self.clock_offset_s = 0.0

    def observe(self, job: Job, outcome: str, duration: float) -> None:
        """Count one attempt; ``duration`` in seconds. Cheap, and never raises: it runs after every job."""
        task = job.function if job.function in self.tasks else OTHER_TASK
        self.counts[(ATTEMPTS, task, outcome)] += 1
        self.counts[(DURATION, task, _LE[bisect.bisect_left(BUCKETS, duration)])] += 1
        self.sums[(DURATION_SUM, task)] += duration
        if outcome in ACTIVITY:
            self.counts[(MINUTE, str(int((time.time() + self.clock_offset_s) // 60)), ACTIVITY[outcome])] += 1

    async def flush(self) -> None:
        """Add the counts since the last flush to Redis, in one transaction. If that fails, they are
        kept for the next flush (and the error raised, for the upkeep's outage handling)."""
        if not self.counts:
            return
        self.clock_offset_s = await redis_now_ms(self.queue.redis) / 1000 - time.time()
        counts, sums = self.counts, self.sums
        self.counts, self.sums = Counter(), defaultdict(float)
        key = metrics_key(self.queue)
        try:
            async with self.queue.redis.pipeline(transaction=True) as pipe:
                for parts, count in counts.items():
                    if parts[0] == MINUTE:
                        minute_key = activity_key(self.queue, int(parts[1]))
                        pipe.hincrby(minute_key, parts[2], count).expire(minute_key, ACTIVITY_KEEP_S)
                    else:
                        pipe.hincrby(key, json.dumps(parts), count)
                for parts, total in sums.items():
                    pipe.hincrbyfloat(key, json.dumps(parts), total)
                await pipe.execute()
        except BaseException:
            # Not written, as far as we know. (Had Redis applied it and the reply been lost, these
            # attempts would count twice; a lost count is the worse error for a counter.)
            self.counts.update(counts)
            for parts, total in sums.items():
                self.sums[parts] += total
            raise

    async def on_shutdown(self, ctx: dict[str, Any]) -> None:
        """The last counts of a stopping worker; a Redis that is gone by then costs them, said in the log."""
        try:
            await self.flush()
        except Exception as exc:
            logger.warning(
                "Metrics of %d attempt(s) were not saved: Redis did not take them (%s).",
                sum(n for parts, n in self.counts.items() if parts[0] == ATTEMPTS),
                exc or type(exc).__name__,
            )


def add_to_worker(*, queue: AtomicRedisQueue, tasks: Iterable[str], interval: float, **kwargs: Any) -> WorkerAddOn:
    """A ``building_worker`` receiver: the worker's attempt counts, added to Redis every ``interval``
    seconds (the worker_info tick) and when it stops."""
    recorder = AttemptRecorder(queue, tasks)
    # No ``uses``: a flush with nothing to add does not reach Redis, so it cannot say Redis is back.
    return WorkerAddOn(
        observers=(recorder.observe,),
        upkeep=(Upkeep("metrics", recorder.flush, interval),),
        shutdown=(recorder.on_shutdown,),
    )
