"""``Worker``: SAQ's worker, running each attempt through the atomic transitions of ``AtomicRedisQueue``.

What it changes in ``saq.Worker``:

- ``process`` takes a job and marks it ACTIVE in one step, and records the attempt's outcome
  with an owner compare-and-set; an attempt that the sweep took over is dropped, not recorded;
- one ``touch`` per tick heartbeats every running attempt and reads its status, which is how
  aborts reach the worker (SAQ polls for them separately);
- an attempt cut short by a clean stop goes back to the head of the queue without using up an
  attempt; an idle worker stops at once;
- cron entries fire on the local wall clock, once per day across daylight-saving changes
  (``engine/cron.py``);
- a Redis or database outage is logged once when it starts and once when it ends, and the
  worker waits, backing off, instead of spinning;
- one structured log line per finished attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

import saq
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from saq.job import Job, Status
from saq.utils import now
from saq.worker import ensure_coroutine_function

from ..exceptions import JobNotStorable, JobStateConflict
from .cron_sync import CronSchedule, sync_cron
from .queue import AtomicRedisQueue, drop_unstorable

logger = logging.getLogger("tasks_app.worker")

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
# How far ahead a --burst worker looks for scheduled jobs (retries with backoff) before exiting.
BURST_LOOKAHEAD_S = 5.0
# How long a job already cancelled is given to wind down before its outcome is written anyway.
CANCEL_DEADLINE_S = 1.0


def log_attempt(
    log: logging.Logger,
    job: Job,
    outcome: str,
    duration: float,
    exception: BaseException | None,
    *,
    queue: str | None = None,
    prefix: str = "job",
) -> None:
    """One structured line per finished attempt (a worker's, or an inline run's): task, key, queue (when
    there is one), attempt, duration, outcome.

    INFO when it completed (or went back to its queue on a stop), ERROR when it ended failed, WARNING
    otherwise (retrying, aborted, lost). A failure's traceback goes with it; a timeout says its limit.
    """
    fields: dict[str, Any] = {"task": job.function, "job_key": job.key}
    if queue is not None:
        fields["queue"] = queue
    fields.update(attempt=job.attempts, duration_ms=round(duration * 1000, 1), outcome=outcome)
    message = prefix + " task=%s key=%s attempt=%d duration=%.3fs outcome=%s"
    args: tuple = (job.function, job.key, job.attempts, duration, outcome)
    exc_info = None
    if outcome in ("complete", "requeued"):
        level = logging.INFO
    elif outcome in ("failed", "timeout"):
        level = logging.ERROR
    else:  # retrying, timeout-retrying, aborted, lost
        level = logging.WARNING
    if outcome.startswith("timeout"):
        message += " (timed out after %ss)"
        args += (job.timeout,)
    elif exception is not None and outcome in ("failed", "retrying"):
        exc_info = (type(exception), exception, exception.__traceback__)
    log.log(level, message, *args, extra=fields, exc_info=exc_info)


@dataclass(frozen=True)
class Upkeep:
    """A periodic chore of the worker's own (e.g. draining an outbox), run every ``interval`` seconds.

    ``uses``: the services a successful run has certainly reached, so an outage of them is over.
    """

    name: str
    run: Callable[[], Awaitable[Any]]
    interval: float | Callable[[], float]
    uses: tuple[str, ...] = ()

    def seconds(self) -> float:
        return self.interval() if callable(self.interval) else self.interval


@dataclass(eq=False)
class Attempt:
    """One attempt of one job in this worker."""

    job: Job
    touched: int
    process: asyncio.Task | None = None
    task: asyncio.Task | None = None
    ending: str | None = None  # "aborted" or "lost", once the heartbeat says so
    timed_out: bool = False


@dataclass
class Outages:
    """Log a lost service once when it goes, and once when it comes back."""

    since: dict[str, float] = field(default_factory=dict)

    def failed(self, service: str, exc: BaseException) -> float:
        """Record a failure; returns how long to wait before trying again (backing off to 5 s)."""
        if service not in self.since:
            self.since[service] = time.monotonic()
            logger.error(
                "Lost %s (%s); retrying until it is back.",
                service,
                exc or type(exc).__name__,
                extra={"service": service, "event": "outage"},
            )
        return min(5.0, 0.25 + (time.monotonic() - self.since[service]) / 4)

    def succeeded(self, service: str) -> None:
        started = self.since.pop(service, None)
        if started is not None:
            logger.warning(
                "%s is back after %.1fs.",
                service[:1].upper() + service[1:],
                time.monotonic() - started,
                extra={"service": service, "event": "recovered"},
            )


def service_of(exc: BaseException) -> str | None:
    """Which outside service an exception says is unreachable: "Redis", "the database", or None."""
    from django.db import InterfaceError, OperationalError

    if isinstance(exc, (OperationalError, InterfaceError)):
        return "the database"
    if isinstance(exc, REDIS_ERRORS):
        return "Redis"
    return None


class Worker(saq.Worker):
    """A SAQ worker for an ``AtomicRedisQueue``.

    ``functions`` are ``(name, async function)`` pairs; hooks may be sync, and then run on
    ``executor``. ``upkeep`` adds periodic chores; ``cron`` adds cron entries in ``cron_tz``.
    ``observers`` are called, on the loop, with ``(job, outcome, duration in seconds)`` after each
    attempt's outcome is recorded (metrics); they must be cheap and must not raise.
    """

    SIGNALS = []  # the process installs one handler for all its workers (tasks_app.process.runner)

    def __init__(
        self,
        queue: AtomicRedisQueue,
        functions: Sequence[tuple[str, Callable[..., Awaitable[Any]]]],
        *,
        executor: Executor,
        cron: Sequence[CronSchedule] = (),
        cron_tz: tzinfo = UTC,
        upkeep: Sequence[Upkeep] = (),
        observers: Sequence[Callable[[Job, str, float], None]] = (),
        startup: Sequence[Callable] = (),
        shutdown: Sequence[Callable] = (),
        before_process: Sequence[Callable] = (),
        after_process: Sequence[Callable] = (),
        **options: Any,
    ) -> None:
        def coroutines(hooks: Sequence[Callable]) -> list[Callable] | None:
            # Wrapped here, on our executor, so SAQ's own default pool is never used.
            return [ensure_coroutine_function(hook, executor) for hook in hooks] or None

        super().__init__(
            queue,
            functions=list(functions),
            startup=coroutines(startup),
            shutdown=list(shutdown) or None,
            before_process=coroutines(before_process),
            after_process=coroutines(after_process),
            **options,
        )
        self.pool.shutdown(wait=False)  # SAQ's default pool: nothing was given it, so it never started
        self.pool = executor
        self.queue: AtomicRedisQueue = queue
        self.cron_schedules = list(cron)
        self.cron_tz = cron_tz
        self.chores = list(upkeep)
        self.observers = list(observers)
        self.attempts: set[Attempt] = set()
        # Jobs already taken for this worker (with the previous job's outcome, in one round trip),
        # waiting for the next process() call; re-queued if the worker stops first.
        self.taken: list[Job] = []
        self.paused_said = False  # a --burst worker says once that its queue is paused
        self.outages = Outages()
        self._upkeep_tasks: list[asyncio.Task] = []

    # --- one attempt ------------------------------------------------------------------------------

    async def process(self) -> bool:
        """Take a job and run an attempt of it, then of the jobs taken with its outcome, while the
        worker keeps going (one task for a run of jobs, rather than one per job); False when there
        was nothing to take."""
        job = await self._take()
        if job is None:
            return False
        while job is not None:
            await self._process_one(job)
            job = self.taken.pop() if self.taken and not self.event.is_set() else None
        return True

    async def _process_one(self, job: Job) -> None:
        attempt = Attempt(job=job, touched=job.touched, process=asyncio.current_task())
        self.attempts.add(attempt)
        ctx: dict[str, Any] = {**self.context, "job": job}
        started = time.monotonic()
        try:
            outcome = await self._attempt(attempt, ctx)
        finally:
            self.attempts.discard(attempt)
        ctx["outcome"] = outcome
        duration = time.monotonic() - started
        self._log(job, outcome, duration, ctx.get("exception"))
        for observe in self.observers:
            observe(job, outcome, duration)
        for hook in self.after_process or ():
            try:
                await hook(ctx)
            except Exception:
                logger.exception("An after_process hook failed for job %s", job.key)

    async def _take(self) -> Job | None:
        if self.taken:
            return self.taken.pop()
        take = asyncio.ensure_future(self.queue.take(self.id, wait=self.dequeue_timeout))
        try:
            job = await asyncio.shield(take)
        except asyncio.CancelledError:
            # Stopping while taking: a job the take already marked ACTIVE goes straight back.
            job = await self._settle(take)
            if job is not None:
                await self._write(job, lambda: self._requeued(job))
            raise
        except Exception as exc:
            service = service_of(exc)
            if service is None:
                raise
            await asyncio.sleep(self.outages.failed(service, exc))
            return None
        self.outages.succeeded("Redis")
        if job is None and self.burst:
            if await self._due_soon():
                await asyncio.sleep(0.2)  # a retry with backoff is about to be due: wait for it
                return await self._take()
            if not self.paused_said and await self.queue.paused():
                self.paused_said = True
                logger.warning(
                    "Queue %s is paused: this --burst worker ends without its waiting jobs (resumequeue %s).",
                    self.queue.name,
                    self.queue.name,
                )
        return job

    @staticmethod
    async def _settle(task: asyncio.Future) -> Job | None:
        try:
            return await task
        except Exception:
            return None

    async def _attempt(self, attempt: Attempt, ctx: dict[str, Any]) -> str:
        """Run the attempt and record its outcome; returns the outcome's name for the log line."""
        job = attempt.job
        try:
            for hook in self.before_process or ():
                await hook(ctx)
            function = self.functions.get(job.function)
            if function is None:
                raise LookupError(f"No task {job.function!r} is registered in this worker.")
            attempt.task = asyncio.create_task(function(ctx, **(job.kwargs or {})))
            result = await self._run(attempt)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                # The worker is stopping and the grace period is over (or it was forced).
                await self._cancel(attempt)
                return await self._write(job, lambda: self._requeued(job))
            if attempt.ending == "aborted":
                return await self._write(job, lambda: self._aborted(job))
            if attempt.ending == "lost":
                return "lost"
            raise
        except Exception as exc:
            failure = ctx["exception"] = exc
            await self._cancel(attempt)
            error = "".join(traceback.format_exception(failure))
            if attempt.ending == "lost":
                return "lost"
            if job.retryable:
                return await self._write(job, lambda: self._retried(job, error, attempt.timed_out))
            return await self._write(
                job, lambda: self._ended(job, Status.FAILED, error=error, timed_out=attempt.timed_out)
            )
        if attempt.ending == "lost":
            return "lost"
        return await self._write(job, lambda: self._ended(job, Status.COMPLETE, result=result))

    async def _run(self, attempt: Attempt) -> Any:
        job = attempt.job
        task = attempt.task
        # Waiting on the task, not awaiting it: a stop request cancels this wait, not the job;
        # _attempt decides what becomes of the job.
        await asyncio.wait((task,), timeout=job.timeout or None)
        if task.done():
            return task.result()  # its value, or what it raised (CancelledError when aborted)
        await self._cancel(attempt)
        attempt.timed_out = True
        raise TimeoutError(f"Job {job.key} ({job.function}) exceeded its timeout of {job.timeout}s.")

    async def _cancel(self, attempt: Attempt) -> None:
        task = attempt.task
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(task), CANCEL_DEADLINE_S)
        if not task.done():
            logger.warning("Job %s did not stop within %.0fs of being cancelled.", attempt.job.key, CANCEL_DEADLINE_S)

    # --- outcomes: each one compare-and-set -------------------------------------------------------

    async def _ended(self, job: Job, status: Status, *, result=None, error=None, timed_out: bool = False) -> str:
        # While the worker keeps going, the next job comes back with this outcome's write.
        take_next = not self.event.is_set() and self.max_burst_jobs is None
        taken = await self.queue.end_attempt(job, status, result=result, error=error, take_next=take_next)
        if taken is not None:
            self.taken.append(taken)
        if status == Status.FAILED:
            return "timeout" if timed_out else "failed"
        return status.value

    async def _retried(self, job: Job, error: str, timed_out: bool) -> str:
        status = await self.queue.retry_attempt(job, error)
        if status == Status.ABORTED:
            return "aborted"
        return "timeout-retrying" if timed_out else "retrying"

    async def _aborted(self, job: Job) -> str:
        await self.queue.end_abort(job)
        return "aborted"

    async def _requeued(self, job: Job) -> str:
        status = await self.queue.requeue_attempt(job, "re-queued: its worker stopped before the job finished")
        return "requeued" if status == Status.QUEUED else status.value

    async def _write(self, job: Job, change: Callable[[], Awaitable[str]]) -> str:
        """Record an outcome of ``job``'s attempt, waiting out a Redis outage; a refused change means
        the attempt was lost.

        A stop request arriving meanwhile cannot cut a write in half: each is one script, sent
        whole once started. If the worker dies before Redis is back, the job runs again once its
        heartbeat lapses.
        """
        unstorable = False
        while True:
            try:
                outcome = await change()
            except JobNotStorable as exc:
                if unstorable:  # still, after dropping what JSON cannot hold: left to the sweep
                    logger.error("%s Left to the sweep.", exc, extra={"job_key": exc.key, "outcome": "lost"})
                    return "lost"
                unstorable, error = True, drop_unstorable(job, exc)
                logger.error("%s", error, extra={"job_key": exc.key, "outcome": "failed"})
                change = functools.partial(self._ended, job, Status.FAILED, error=error)
                continue
            except JobStateConflict as conflict:
                if conflict.taken is not None:
                    self.taken.append(conflict.taken)
                stored = conflict.stored.status.value if conflict.stored else "missing"
                logger.warning(
                    "Job %s's attempt on this worker was taken over (it is %s now); its outcome is dropped.",
                    conflict.key,
                    stored,
                    extra={"job_key": conflict.key, "outcome": "lost"},
                )
                return "lost"
            except REDIS_ERRORS as exc:
                await asyncio.sleep(self.outages.failed("Redis", exc))
                continue
            if self.outages.since:
                self.outages.succeeded("Redis")
            return outcome

    def _log(self, job: Job, outcome: str, duration: float, exception: BaseException | None) -> None:
        if outcome in ("complete", "requeued") and not logger.isEnabledFor(logging.INFO):
            return  # the common case at -v 0, once per job: nothing to build, no call
        log_attempt(logger, job, outcome, duration, exception, queue=self.queue.name)

    # --- heartbeat, aborts, upkeep ----------------------------------------------------------------

    async def heartbeat(self) -> None:
        """Touch running attempts that are due, and act on the ones aborted or taken over."""
        attempts = [attempt for attempt in self.attempts if attempt.ending is None]
        if not attempts:
            return
        current = now()
        due = [bool(a.job.heartbeat) and current - a.touched >= a.job.heartbeat * 1000 / 4 for a in attempts]
        states = await self.queue.touch(self.id, zip((a.job for a in attempts), due, strict=True))
        for attempt, is_due, state in zip(attempts, due, states, strict=True):
            if is_due:
                attempt.touched = current
            task = attempt.task
            if state not in ("aborting", "lost") or task is None or task.done() or attempt.ending is not None:
                continue  # a finished task's own write decides its outcome
            attempt.ending = "aborted" if state == "aborting" else "lost"
            if state == "lost":
                logger.warning(
                    "Job %s is no longer this worker's (swept or taken over); cancelling it.", attempt.job.key
                )
            task.cancel()

    async def abort(self, abort_threshold: float) -> None:
        # SAQ's abort poll: here the heartbeat reads every running attempt's status instead.
        await self.heartbeat()

    async def schedule(self, lock: int = 1) -> None:
        """Bring the stored cron runs in line with the entries (``engine/cron_sync.py``), then queue due jobs.
        ``lock``: see ``AtomicRedisQueue.schedule``."""
        if not self.burst:
            await sync_cron(self.queue, self.cron_schedules, self.cron_tz, datetime.now(UTC))
        scheduled = await self.queue.schedule(lock)
        if scheduled:
            logger.debug("Scheduled %s", scheduled)

    async def _due_soon(self) -> bool:
        return await self.queue.due_within(BURST_LOOKAHEAD_S)

    async def upkeep(self) -> list[asyncio.Task]:
        timers = self.timers
        chores = [
            # Reaches Redis only while jobs run; often enough that every running job is touched
            # at least three times within its heartbeat, and aborts are seen within ``abort`` s.
            Upkeep("heartbeat", self.heartbeat, self._heartbeat_interval),
            Upkeep("schedule", self.schedule, timers["schedule"], uses=("Redis",)),
            Upkeep("sweep", lambda: self.queue.sweep(lock=int(timers["sweep"])), timers["sweep"], uses=("Redis",)),
            Upkeep(
                "worker info",
                lambda: self.worker_info(timers["worker_info"] + 1),
                timers["worker_info"],
                uses=("Redis",),
            ),
            *self.chores,
        ]
        self._upkeep_tasks = [asyncio.create_task(self._every(chore), name=f"upkeep:{chore.name}") for chore in chores]
        return self._upkeep_tasks

    def _heartbeat_interval(self) -> float:
        beats = [attempt.job.heartbeat for attempt in self.attempts if attempt.job.heartbeat]
        return min([self.timers["abort"], *(beat / 4 for beat in beats)])

    async def _every(self, chore: Upkeep) -> None:
        while not self.event.is_set():
            wait = chore.seconds()
            try:
                await chore.run()
            except Exception as exc:
                service = service_of(exc)
                if service is None:
                    logger.exception("Upkeep %r failed", chore.name)
                else:
                    wait = min(wait, self.outages.failed(service, exc))
            else:
                for service in chore.uses:
                    self.outages.succeeded(service)
            await asyncio.sleep(wait)

    # --- stopping ---------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop taking jobs; running attempts get the grace period, then go back to the queue."""
        self.event.set()
        for task in self._upkeep_tasks:
            task.cancel()
        await asyncio.gather(*self._upkeep_tasks, return_exceptions=True)
        self.tasks.difference_update(self._upkeep_tasks)
        busy = {attempt.process for attempt in self.attempts}
        for task in self.tasks - busy:
            task.cancel()  # idle: waiting for work, holding none
        while self.taken:  # taken for this worker, never started: back to the head of the queue
            job = self.taken.pop()
            with contextlib.suppress(*REDIS_ERRORS, JobStateConflict):
                await self.queue.requeue_attempt(job, "re-queued: its worker was stopping")
        await super().stop()
        with contextlib.suppress(Exception):  # Redis may be gone: then the info simply expires
            await self.queue.forget_worker(self.id)

    def force_stop(self) -> None:
        """Cut the grace period short: running attempts are cancelled and re-queued now."""
        self.event.set()
        for attempt in list(self.attempts):
            if attempt.process is not None:
                attempt.process.cancel()
