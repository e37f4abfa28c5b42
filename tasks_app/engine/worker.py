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
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from datetime import UTC, tzinfo
from typing import Any

import saq
from saq.job import Job

from ..exceptions import JobStateConflict
from . import attempts, chains, pausing
from .burst import BurstGroup, Bursting
from .cron_sync import CronSchedule, sync_cron
from .execution import Attempt, Execution, as_coroutine
from .outages import REDIS_ERRORS, Outages, Upkeep, service_of, settle
from .outcomes import Outcomes
from .queue import AtomicRedisQueue
from .stopping import THROUGH_STOP, Stopping
from .sweeping import HELD_SILENCE_S

logger = logging.getLogger("tasks_app.worker")

# The task name an evicted job is counted under (its record, and so its task, is gone).
EVICTED = "(evicted)"


def touch_every(job: Job) -> float:
    """How often (s) a running ``job`` with a ``heartbeat`` is touched: four times per heartbeat, so that
    a late tick or a slow round trip never leaves it silent long enough for the sweep to take it."""
    return job.heartbeat / 4


def _touch_period(attempt: Attempt) -> float | None:
    # A held attempt is touched even when its job has no heartbeat: the sweep judges it by its touches.
    if attempt.job.heartbeat:
        return touch_every(attempt.job)
    return HELD_SILENCE_S / 4 if attempt.held else None


class Worker(Outcomes, Bursting, Stopping, saq.Worker):
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
            return [as_coroutine(hook, executor) for hook in hooks] or None

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
        self._heartbeat_wake = asyncio.Event()  # see Upkeep.wake
        # Jobs already taken for this worker (with the previous job's outcome, in one round trip),
        # waiting for the next process() call; re-queued if the worker stops first. Each with when it
        # was asked for (``time.monotonic()``): see ``_lost_meanwhile``.
        self.taken: list[tuple[Job, float]] = []
        self.paused_said = False  # a --burst worker says once that its queue is paused
        # --burst: when this process's burst workers are done (shared by them: ``burst.py``).
        self.burst_group = BurstGroup([self]) if self.burst else None
        # A Sentinel client's pool logs its own outage lines (naming the primaries): one pair per outage.
        reported = getattr(self.queue.redis.connection_pool, "reports_outages", False)
        self.outages = Outages(quiet=frozenset({"Redis"}) if reported else frozenset())
        self._upkeep_tasks: list[asyncio.Task] = []
        self.execution = Execution(
            self.functions.get,
            self,
            logger,
            before=self.before_process or (),
            after=self.after_process or (),
            observers=self.observers,
            queue=queue.name,
            outage=self.outages.database_down,
        )

    # --- one attempt ------------------------------------------------------------------------------

    async def process(self) -> bool:
        """Take a job and run an attempt of it, then of the jobs taken with its outcome, while the
        worker keeps going (one task for a run of jobs, rather than one per job); False when there
        was nothing to take."""
        taken = await self._take()
        if taken is None:
            return False
        while taken is not None:
            await self._process_one(*taken)
            if self.taken and not self.event.is_set():
                taken = self.taken.pop()
            elif self.burst and self.max_burst_jobs is None and not self.event.is_set():
                # A --burst slot goes on until it finds nothing left itself: SAQ ends a slot whose run
                # returns once another slot has found nothing, and the work this job queued (a retry,
                # a job it enqueued) would be left behind.
                taken = await self._take()
                if taken is None:
                    return False
            else:
                taken = None
        return True

    async def _process_one(self, job: Job, asked: float | None = None) -> None:
        try:
            if asked is not None and await self._lost_meanwhile(job, time.monotonic() - asked):
                return
        except asyncio.CancelledError:  # a stop took this slot for an idle one: the stop gives the job back
            self.taken.append((job, asked))
            raise
        attempt = Attempt(job=job, touched=time.monotonic(), process=asyncio.current_task())  # taking touched it
        self.attempts.add(attempt)
        if job.heartbeat and touch_every(job) < self.timers["abort"]:
            # Its first touch is due sooner than the heartbeat chore's idle wait (``abort`` s) ends.
            self._heartbeat_wake.set()
        try:
            ctx = {**self.context, "job": job}
            if job.meta and chains.META in job.meta:  # a chain step: its parents' results (one read)
                ctx["parent_results"] = await self._parent_results(job)
            await self.execution.run(attempt, ctx)
        finally:
            self.attempts.discard(attempt)
            if self.burst_group is not None:
                self.burst_group.attempt_ended()

    async def _lost_meanwhile(self, job: Job, elapsed: float) -> bool:
        """Whether ``job``, asked for ``elapsed`` s ago and not started, is no longer this worker's.

        A process stopped between the take and the start (SIGSTOP, a paused VM, swapping) may have been
        swept meanwhile and its job run, even ended, elsewhere: starting it now would run it once more.
        It cannot have been before its touch (stamped by the take, so at most ``elapsed`` s old) was due:
        ``touch_every`` (or, without a heartbeat, half its timeout). Past that, one touch asks Redis (and counts
        as the job's first): a job lost is not started. On time, as a busy worker always is, nothing is
        sent. A pause after this check still runs it once more (at least once: its outcome is refused).
        """
        due = touch_every(job) if job.heartbeat else (job.timeout or 0) / 2
        if not due or elapsed <= due:
            return False
        try:
            (state,) = await attempts.touch(self.queue, self.id, [(job, True)])
        except REDIS_ERRORS:
            return False  # Redis is out: started as it would have been, its heartbeat decides
        if state != "lost":
            return False
        logger.warning(
            "Job %s was taken %.1fs ago and is no longer this worker's (swept or taken over while this "
            "worker was stalled); it is not started.",
            job.key,
            elapsed,
            extra={"job_key": job.key, "task": job.function, "outcome": "lost", "stalled_s": round(elapsed, 3)},
        )
        return True

    async def _parent_results(self, job: Job) -> list[Any]:
        while True:  # the attempt is held (heartbeat) while Redis is out
            try:
                return await chains.parent_results(self.queue, job)
            except REDIS_ERRORS as exc:
                await asyncio.sleep(self.outages.failed("Redis", exc))

    async def _take(self) -> tuple[Job, float] | None:
        if self.taken:
            return self.taken.pop()
        # A job's attempt found the database down: no job is taken until it answers, rather than each
        # failing in turn (``Outages.database_down``, the executions' ``outage``). A --burst worker waits
        # it out: its queue is not empty.
        while self.outages.database_held and (wait := await self.outages.database_wait()) is not None:
            await asyncio.sleep(wait)
            if not self.burst or self.event.is_set():
                return None
        looked = False
        while True:  # a loop: a burst worker waiting for a retry about to be due takes again
            asked = time.monotonic()
            take = asyncio.ensure_future(
                attempts.take(self.queue, self.id, wait=self.dequeue_timeout, idle=not self.burst)
            )
            try:
                job = await asyncio.shield(take)
            except asyncio.CancelledError:
                # Stopping while taking: a job the take already marked ACTIVE goes straight back.
                job = await settle(take)
                if job is not None:
                    await self.requeue(job)
                raise
            except Exception as exc:
                service = service_of(exc)
                if service is None:
                    raise
                await asyncio.sleep(self.outages.failed(service, exc))
                return None
            self.outages.succeeded("Redis")
            if job is not None:
                if self.outages.database_held:  # since this slot began waiting: back first, then wait
                    with contextlib.suppress(*REDIS_ERRORS, JobStateConflict):
                        await asyncio.shield(attempts.requeue_attempt(self.queue, job, "re-queued: no database"))
                    return None
                return job, asked
            if not self.burst:
                return None
            try:
                ended = self.burst_group.next_end()
                if await self.burst_group.work_ahead():
                    # Jobs run (what they end may queue more), wait for their limits, or a retry is about
                    # to be due: look again, and once more before ending (what ends meanwhile may queue).
                    looked = False
                    await self.burst_group.until(ended)
                    continue
                if looked:
                    break
                looked = True
                await self.burst_group.last_look()
            except Exception as exc:  # as a take's: an outage ends this slot's run, logged once
                service = service_of(exc)
                if service is None:
                    raise
                await asyncio.sleep(self.outages.failed(service, exc))
                return None
        said, self.paused_said = self.paused_said, True  # once for the worker, not once per slot
        if not said and await pausing.paused(self.queue):
            logger.warning(
                "Queue %s is paused: this --burst worker ends without its waiting jobs (resumequeue %s).",
                self.queue.name,
                self.queue.name,
            )
        return None

    # --- heartbeat, aborts, upkeep ----------------------------------------------------------------

    async def heartbeat(self) -> None:
        """Touch running attempts that are due, act on the ones aborted or taken over, and mark the
        ones held past their cancellation (``HELD``) so that the sweep leaves them to this worker."""
        # An attempt whose task has not returned is touched even once aborted: it still runs.
        running = [a for a in self.attempts if a.ending is None or (a.task is not None and not a.task.done())]
        if not running:
            return
        # Elapsed on this host's monotonic clock: whether a touch is due is this worker's own business.
        current, interval = time.monotonic(), self._heartbeat_interval()
        # Due unless it can wait for the next tick: "silent for touch_every yet?" alone would skip a
        # job whose tick came a millisecond early (timers do), and leave it silent for two intervals.
        due = [(p := _touch_period(a)) is not None and current + interval - a.touched > p for a in running]
        states = await attempts.touch(self.queue, self.id, zip((a.job for a in running), due, strict=True))
        for attempt, is_due, state in zip(running, due, states, strict=True):
            if is_due:
                attempt.touched = current
            task = attempt.task
            if task is None or task.done() or state == "lost":
                pass
            elif task.cancelling() and not attempt.held:
                await self._hold(attempt)
            if state not in ("aborting", "lost") or task is None or task.done() or attempt.ending is not None:
                continue  # a finished task's own write decides its outcome
            attempt.ending = "aborted" if state == "aborting" else "lost"
            if state == "lost":
                logger.warning(
                    "Job %s is no longer this worker's (swept or taken over); cancelling it.", attempt.job.key
                )
            attempt.cancel(attempt.ending)

    async def _hold(self, attempt: Attempt) -> None:
        # Its task was cancelled (timeout, abort) and has not returned: a sync task's thread cannot be
        # stopped. The mark keeps the sweep's timeout rule off it while this worker heartbeats it; the
        # outcome's write removes it (_write).
        try:
            await attempts.hold(self.queue, self.id, attempt.job)
        except (JobStateConflict, *REDIS_ERRORS):  # tried again next tick; this tick goes on to the others
            return
        attempt.held, attempt.touched = True, time.monotonic()  # the hold touched it

    async def abort(self, abort_threshold: float) -> None:
        # SAQ's abort poll: here the heartbeat reads every running attempt's status instead.
        await self.heartbeat()

    async def schedule(self, lock: int = 1) -> None:
        """Bring the stored cron runs in line with the entries (``engine/cron_sync.py``), then queue due jobs.
        ``lock``: see ``AtomicRedisQueue.schedule``."""
        if not self.burst:
            await sync_cron(self.queue, self.cron_schedules, self.cron_tz)
        scheduled = await self.queue.schedule(lock)
        if scheduled:
            logger.debug("Scheduled %s", scheduled)

    async def _sweep(self, lock: int | None = None) -> None:
        try:
            await self.queue.sweep(lock=int(self.timers["sweep"]) if lock is None else lock)
        finally:  # counted even when Redis fails mid-sweep: those found before it failed are gone
            while self.queue.evicted:  # jobs whose record vanished: each counted once, as lost
                gone = Job(function=EVICTED, key=self.queue.job_key_from_id(self.queue.evicted.popleft()))
                for observe in self.observers:
                    observe(gone, "lost", 0.0)

    async def upkeep(self) -> list[asyncio.Task]:
        timers = self.timers
        chores = [
            # Reaches Redis only while jobs run; often enough that every running job is touched
            # at least three times within its heartbeat, and aborts are seen within ``abort`` s.
            Upkeep("heartbeat", self.heartbeat, self._heartbeat_interval, wake=self._heartbeat_wake),
            Upkeep("schedule", self.schedule, timers["schedule"], uses=("Redis",)),
            Upkeep("sweep", self._sweep, timers["sweep"], uses=("Redis",)),
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
        return min([self.timers["abort"], *(p for a in self.attempts if (p := _touch_period(a)) is not None)])

    async def _every(self, chore: Upkeep) -> None:
        # Some go on through a stop while attempts run (``stopping.THROUGH_STOP``).
        while not self.event.is_set() or (chore.name in THROUGH_STOP and self.attempts):
            wait = chore.seconds()
            try:
                await chore.run_alone()
            except Exception as exc:
                service = service_of(exc)
                if service is None:
                    logger.exception("Upkeep %r failed", chore.name)
                else:
                    wait = min(wait, self.outages.failed(service, exc))
            else:
                for service in chore.uses:
                    self.outages.succeeded(service)
                self._confirmed_again()
            await chore.rest(wait)
