"""``DjangoRedisQueue``: SAQ's RedisQueue, made patient, leaner and race-free."""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from saq.job import TERMINAL_STATUSES, Status
from saq.queue.redis import RedisQueue

logger = logging.getLogger("tasks_app.queues")

# Take the next queued job and read it, in one round trip (LMOVE needs Redis 6.2).
TAKE_SCRIPT = """
local id = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
if id then return {id, redis.call('GET', id)} end
return nil
"""

# A job just dequeued is not yet marked ACTIVE; one still unmarked this much later is orphaned.
ORPHAN_RECHECK_S = 1.0
# How long a sweep waits for a live owner to acknowledge an abort (its abort loop runs every second).
ABORT_WAIT_S = 2.0

# SAQ's own: at most once per `lock` seconds across workers, list the active jobs.
SWEEP_SCRIPT = """
local id_jobs = {}
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SETEX', KEYS[1], ARGV[1], 1)
    for i, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
        id_jobs[i] = {v, redis.call('GET', v)}
    end
end
return id_jobs
"""


class DjangoRedisQueue(RedisQueue):
    """SAQ's Redis queue, with three changes:

    - patient while Redis is away: SAQ's worker retries a failed dequeue at once,
      in a tight loop; here a lost connection is logged once and retried with
      backoff until Redis is back;
    - fewer round trips per job: a dequeue that finds work takes the job and its
      data in one script, and a status change writes and publishes in one pipeline;
    - a sweep without SAQ's two races (see ``sweep``).
    """

    _outage_started: float | None = None
    _take_script = None

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0):  # noqa: ASYNC109 (SAQ's signature)
        try:
            job = await self._dequeue(timeout)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            if self._outage_started is None:
                self._outage_started = time.monotonic()
                logger.error("Lost Redis for queue %r (%s); retrying until it is back.", self.name, exc)
            outage = time.monotonic() - self._outage_started
            await asyncio.sleep(min(5.0, 0.25 + outage / 4))
            return None
        if self._outage_started is not None:
            logger.warning(
                "Redis is back for queue %r after %.1fs.", self.name, time.monotonic() - self._outage_started
            )
            self._outage_started = None
        return job

    async def _dequeue(self, timeout: float):  # noqa: ASYNC109 (passed on to SAQ)
        if self._take_script is None:
            self._take_script = self.redis.register_script(TAKE_SCRIPT)
        taken = await self._take_script(keys=[self._queued, self._active], client=self.redis)
        if taken:
            return self.deserialize(taken[1])
        return await super().dequeue(timeout)  # nothing queued: block until something is

    # SAQ writes a job and then publishes its new status in a second round trip;
    # one pipeline does both, in the same order, for a third less Redis traffic per job.

    async def _update(self, job, status=None, **kwargs) -> None:
        if not status:
            stored = await self.job(job.key)
            status = stored.status if stored else None
        job.status = status or job.status
        async with self.redis.pipeline(transaction=False) as pipe:
            await pipe.set(job.id, self.serialize(job)).publish(job.id, job.status).execute()

    async def _finish(self, job, status, *, result=None, error=None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self._active, 1, job.id).zrem(self._incomplete, job.id)
            if job.ttl > 0:
                pipe.setex(job.id, job.ttl, self.serialize(job))
            elif job.ttl == 0:
                pipe.set(job.id, self.serialize(job))
            else:
                pipe.delete(job.id)
            await pipe.publish(job.id, job.status).execute()

    async def forget_worker(self, worker_id: str) -> None:
        """Remove a stopped worker's info now, instead of letting it expire."""
        key = self.namespace(f"worker_info:{worker_id}")
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.delete(key).zrem(self._stats, key).execute()

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        """SAQ's sweep, without its two races.

        SAQ sweeps an active job whose status is not ACTIVE at once, but a job a
        worker has just dequeued looks exactly like that for a few milliseconds;
        and it retries a swept job even when it completed while being aborted.
        Both ran jobs twice. Here a suspect must still look orphaned a moment
        later, and a job that reached a terminal state is left alone.
        """
        if not self._cleanup_script:
            self._cleanup_script = self.redis.register_script(SWEEP_SCRIPT)
        abort = min(abort, ABORT_WAIT_S)
        id_jobs = await self._cleanup_script(keys=[self._sweep, self._active], args=[lock], client=self.redis)
        swept: list[str] = []
        suspects: list[bytes] = []
        for job_id, job_bytes in id_jobs:
            job = self.deserialize(job_bytes)
            if job is None:
                await self._forget(job_id)
                swept.append(job_id.decode())
            elif job.status != Status.ACTIVE:
                suspects.append(job_id)
            elif job.stuck:
                await self._sweep_job(job, abort)
                swept.append(job_id.decode())
        if suspects:
            await asyncio.sleep(ORPHAN_RECHECK_S)
            for job_id in suspects:
                job = await self._get_job_by_id(job_id)
                still_active = await self.redis.lpos(self._active, job_id) is not None
                if still_active and (job is None or job.status != Status.ACTIVE):
                    if job is None:
                        await self._forget(job_id)
                    else:
                        await self._sweep_job(job, abort)
                    swept.append(job_id.decode())
        return swept

    async def _forget(self, job_id: bytes) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.lrem(self._active, 0, job_id).zrem(self._incomplete, job_id).execute()
        logger.info("Swept missing job %s", job_id.decode())

    async def _sweep_job(self, job, abort: float) -> None:
        logger.warning(
            "Sweeping orphaned job %s (task %s, attempt %d): its worker stopped heartbeating.",
            job.key,
            job.function,
            job.attempts,
        )
        await self.abort(job, error=self.swept_error_message)
        try:
            await job.refresh(abort)
        except TimeoutError:
            logger.info("Could not abort job %s", job.key)
        if job.status in TERMINAL_STATUSES and job.status != Status.ABORTED:
            return  # it finished while being swept
        if job.retryable:
            await self.retry(job, error=self.swept_error_message)
        else:
            await self.finish(job, Status.ABORTED, error=self.swept_error_message)
