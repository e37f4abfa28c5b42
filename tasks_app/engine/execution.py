"""One attempt of one job, run in one place: by the worker, by inline runs (``run_jobs`` in a capture,
immediate mode) and so by the ``django.tasks`` runner, which is a task like any other.

``Execution.run(attempt, ctx)`` runs the ``before_process`` hooks, the task under its ``timeout``,
decides the outcome (complete, retrying, failed, timeout, timeout-retrying, aborted, requeued, lost),
has a ``Recorder`` store it where the job lives (Redis for a worker, the job object for an inline
run), logs one line, tells the observers, gives the outcome to the callbacks the task registered in
``ctx[ON_OUTCOME]`` and runs the ``after_process`` hooks.

At most one execution of a job at any time: an attempt is over only when its task is. A task that
does not stop when cancelled (a sync task's thread cannot be stopped; ``call_in_thread`` waits for
it) keeps its attempt, and so its job ACTIVE and heartbeating and its worker slot, until it returns:
only then is the outcome (a retry, a failure, an abort) written.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

from saq.job import Job
from saq.worker import ensure_coroutine_function

from .. import tracing
from ..exceptions import JobNotStorable, reason
from .storage import drop_unstorable

# How long a cancelled task is given to stop before a warning says it does not (it is still awaited).
CANCEL_DEADLINE_S = 1.0

Hook = Callable[[dict[str, Any]], Awaitable[Any]]

# The event loop running the current attempt: a sync task's thread (which inherits the attempt's context
# variables) sends its progress writes there (``tasks_app.progress.report_progress``).
attempt_loop: contextvars.ContextVar[asyncio.AbstractEventLoop] = contextvars.ContextVar("tasks_app_attempt_loop")
# The outcomes whose write ended the job FAILED with no attempts left: the process that wrote one calls the
# task's ``on_final_failure`` (``tasks_app.failures``); another process's write comes back as "lost".
FINAL_FAILURES = frozenset({"failed", "timeout"})
# ``ctx`` key of a list of ``async (outcome: str) -> None`` callbacks a task may add during its attempt, each
# called with the outcome's name once it is written: what the task says of its own end (``django.tasks``'
# ``task_finished``) is then what was stored, not the task's guess (an abort or a stop can still win).
ON_OUTCOME = "on_outcome"


async def outlast(task: asyncio.Future, within: float | None = None) -> None:
    """Wait until ``task`` is done (or ``within`` s have passed), whatever the number of cancellations of
    the waiter meanwhile (a stop's grace period ending, a forced stop): each is passed on to ``task``, which
    an async task obeys and a sync task's thread cannot (``call_in_thread`` waits for it). Had the waiter
    given up, the job would be put back on its queue, and run elsewhere, while its thread runs on."""
    loop = asyncio.get_running_loop()
    deadline = None if within is None else loop.time() + within
    while not task.done():
        left = None if deadline is None else deadline - loop.time()
        if left is not None and left <= 0:
            return
        try:
            await asyncio.wait((task,), timeout=left)
        except asyncio.CancelledError:
            task.cancel()


def as_coroutine(hook: Callable[..., Any], executor: Executor) -> Hook:
    """A hook as a coroutine function: a sync one runs on ``executor`` (SAQ's own wrapping)."""
    return ensure_coroutine_function(hook, executor)


def log_attempt(
    log: logging.Logger,
    job: Job,
    outcome: str,
    duration: float,
    exception: BaseException | None,
    *,
    queue: str | None = None,
    prefix: str = "job",
    attempt: int | None = None,
) -> None:
    """One structured line per finished attempt (a worker's, or an inline run's): task, key, queue (when
    there is one), attempt (``attempt``, default ``job.attempts``: a job put back on its queue no longer
    counts the attempt it was in), duration, outcome.

    INFO when it completed (or went back to its queue on a stop), ERROR when it ended failed, WARNING
    otherwise (retrying, aborted, lost). A failure's traceback goes with it; a retry says only the error's
    first line (``error=Type: ...``; the traceback too at DEBUG), since the attempt that fails for good logs it
    whole; a timeout says its limit.
    """
    if outcome in ("complete", "requeued"):
        level = logging.INFO
        if not log.isEnabledFor(level):
            return  # the common case at -v 0, once per job: nothing to build
    elif outcome in ("failed", "timeout"):
        level = logging.ERROR
    else:  # retrying, timeout-retrying, aborted, lost
        level = logging.WARNING
    fields: dict[str, Any] = {"task": job.function, "job_key": job.key}
    if queue is not None:
        fields["queue"] = queue
    number = job.attempts if attempt is None else attempt
    fields.update(attempt=number, duration_ms=round(duration * 1000, 1), outcome=outcome)
    message = prefix + " task=%s key=%s attempt=%d duration=%.3fs outcome=%s"
    args: tuple = (job.function, job.key, number, duration, outcome)
    exc_info = None
    if outcome.startswith("timeout"):
        message += " (timed out after %ss)"
        args += (job.timeout,)
    elif exception is not None and outcome == "retrying":
        # The type and the first line: the last may be a driver's hint ("Is the server running on ...?").
        first = reason(exception)
        error = first if first == type(exception).__name__ else f"{type(exception).__name__}: {first}"
        message += " error=%s"
        args += (error,)
        fields["error"] = error
        if log.isEnabledFor(logging.DEBUG):
            exc_info = (type(exception), exception, exception.__traceback__)
    elif exception is not None and outcome == "failed":
        exc_info = (type(exception), exception, exception.__traceback__)
    log.log(level, message, *args, extra=fields, exc_info=exc_info)


@dataclass(eq=False)
class Attempt:
    """One attempt of one job. ``touched``: when its heartbeat was last written (``time.monotonic()``);
    ``ending``: "aborted" or "lost" once the heartbeat says so."""

    job: Job
    touched: float = 0.0
    process: asyncio.Task | None = None
    task: asyncio.Task | None = None
    ending: str | None = None
    timed_out: bool = False
    unstorable: JobNotStorable | None = None
    held: bool = False  # marked in Redis as held past its cancellation (the worker's heartbeat)
    # Its outcome once written: only its outcome callbacks and after_process hooks are left (a stop's grace
    # period does not cut them: ``Stopping._wind_down``).
    outcome: str | None = None
    # Why its task was cancelled, as ``cancel`` noted: "timeout", "stop", "aborted", "lost" (a cancellation that
    # ``outlast`` passes on adds nothing: the attempt's outcome follows the first). Shared with the task as
    # ``ctx["cancelled"]``: a task that outlives its cancellation (a sync task's thread) learns from it whether
    # what it returns is the outcome (after a stop alone, see ``Execution._attempt``).
    cancelled: set[str] = field(default_factory=set)

    def cancel(self, why: str) -> None:
        """Cancel its task (if any is running), noting ``why``."""
        if self.task is not None and not self.task.done():
            self.cancelled.add(why)
            self.task.cancel()


class Recorder(Protocol):
    """Stores how an attempt ended where its job lives; each method returns the outcome's name.

    May raise ``JobNotStorable`` (the result or meta cannot be stored): the attempt then fails.
    ``take_next``: the slot is free once this is written, so a worker may take its next job in the same
    round trip (it would wait, unheartbeated, through any work the slot still has to do).
    """

    async def complete(self, job: Job, result: Any, take_next: bool = False) -> str: ...
    async def fail(self, job: Job, error: str, timed_out: bool) -> str: ...
    async def retry(self, job: Job, error: str, timed_out: bool) -> str: ...
    async def end_abort(self, job: Job) -> str: ...
    async def requeue(self, job: Job) -> str: ...


@dataclass
class Execution:
    """Runs attempts: ``function(name)`` returns the task's coroutine function (None: not registered);
    ``log``, ``queue`` and ``prefix`` shape the outcome line; observers get ``(job, outcome, seconds)``."""

    function: Callable[[str], Callable[..., Awaitable[Any]] | None]
    recorder: Recorder
    log: logging.Logger
    before: Sequence[Hook] = ()
    after: Sequence[Hook] = ()
    observers: Sequence[Callable[[Job, str, float], None]] = ()
    queue: str | None = None
    prefix: str = "job"
    # Whether a task's error is an outage of a service it needs (the database down): its job then goes
    # back to its queue without using up an attempt, as at a stop, instead of failing or retrying.
    outage: Callable[[BaseException], Awaitable[bool]] | None = None

    async def run(self, attempt: Attempt, ctx: dict[str, Any]) -> str:
        """Run ``attempt`` to its recorded outcome; returns the outcome's name."""
        job = attempt.job
        number, started = job.attempts, time.monotonic()
        attempt_loop.set(asyncio.get_running_loop())
        ctx["cancelled"] = attempt.cancelled
        ctx[ON_OUTCOME] = []
        if tracing.active():
            with tracing.consumer_span(job, self.queue, ctx):
                ctx["outcome"] = await self._attempt(attempt, ctx)
        else:
            ctx["outcome"] = await self._attempt(attempt, ctx)
        outcome = attempt.outcome = ctx["outcome"]
        duration = time.monotonic() - started
        failure = ctx.get("exception") or attempt.unstorable
        log_attempt(self.log, job, outcome, duration, failure, queue=self.queue, prefix=self.prefix, attempt=number)
        for observe in self.observers:
            observe(job, outcome, duration)
        for told in ctx[ON_OUTCOME]:
            try:
                await told(outcome)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("A callback given job %s's outcome failed", job.key)
        if outcome in FINAL_FAILURES:
            from ..failures import final_failure  # rare: not imported for the common case

            await final_failure(job)
        for hook in self.after:
            try:
                await hook(ctx)
            except asyncio.CancelledError:
                raise
            except BaseException:  # SystemExit too: a hook's failure never ends the worker (see task_wrapper)
                self.log.exception("An after_process hook failed for job %s", job.key)
        return outcome

    async def _attempt(self, attempt: Attempt, ctx: dict[str, Any]) -> str:
        job = attempt.job
        recorder = self.recorder
        try:
            for hook in self.before:
                await hook(ctx)
            function = self.function(job.function)
            if function is None:
                raise LookupError(
                    f"No task {job.function!r} is registered in this process. Workers import each installed "
                    "app's tasks.py: declare it with @task there (or list it in SAQ['TASK_FUNCTIONS']); if it "
                    "was added since this worker started, restart the workers."
                )
            attempt.task = asyncio.ensure_future(function(ctx, **(job.kwargs or {})))
            result = await self._run(attempt)
        except asyncio.CancelledError as exc:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                # Stopping and the grace period is over (or it was forced): back to the queue, unless the
                # task ended by itself meanwhile (a sync task's thread, which cannot be stopped, returned):
                # then its own outcome, so that finished work is not run again.
                await self._cancel(attempt, "stop")
                task = attempt.task
                if task is None or not task.done() or task.cancelled() or attempt.ending is not None:
                    return await self._record(attempt, lambda: recorder.requeue(job))
                if (error := task.exception()) is not None:
                    return await self._failed(attempt, ctx, error)
                return await self._record(attempt, lambda: recorder.complete(job, task.result()))
            if attempt.ending == "aborted":
                await self._cancel(attempt, "aborted")  # aborted: ended once the task has
                return await self._record(attempt, lambda: recorder.end_abort(job))
            if attempt.ending == "lost":
                await self._cancel(attempt, "lost")
                return "lost"
            if attempt.task is None or not attempt.task.done():
                raise
            # Nobody cancelled this attempt: the task's own code raised it (it awaited something that was
            # cancelled). Its job fails (or retries) with that traceback, as for any error.
            return await self._failed(attempt, ctx, exc)
        except Exception as exc:
            return await self._failed(attempt, ctx, exc)
        if attempt.ending is not None:  # aborted or lost meanwhile: see _ended
            return await self._ended(attempt)
        # No next job with the write while the slot still has the task's outcome callbacks and the after_process
        # hooks to run: however long they take, the job would wait for them, taken, and the sweep judge it so.
        free = not self.after and not ctx[ON_OUTCOME]
        return await self._record(attempt, lambda: recorder.complete(job, result, take_next=free))

    async def _ended(self, attempt: Attempt) -> str:
        # Its heartbeat cancelled it (aborted, or no longer this worker's), and it returned or raised all the
        # same: a sync task's thread, which cannot be stopped, gives what it gave. The abort still holds.
        if attempt.ending == "lost":
            return "lost"
        return await self._record(attempt, lambda: self.recorder.end_abort(attempt.job))

    async def _failed(self, attempt: Attempt, ctx: dict[str, Any], exc: BaseException) -> str:
        job, recorder = attempt.job, self.recorder
        ctx["exception"] = exc
        await self._cancel(attempt, "failed")
        if attempt.ending is not None:
            return await self._ended(attempt)
        try:
            down = self.outage is not None and await self.outage(exc)
        except asyncio.CancelledError:  # stopped while the database was probed: back to the queue, as a stop is
            down = True
        if down:
            return await self._record(attempt, lambda: recorder.requeue(job))
        error = "".join(traceback.format_exception(exc))
        if job.retryable:
            return await self._record(attempt, lambda: recorder.retry(job, error, attempt.timed_out))
        return await self._record(attempt, lambda: recorder.fail(job, error, attempt.timed_out))

    async def _run(self, attempt: Attempt) -> Any:
        job, task = attempt.job, attempt.task
        # Waiting on the task, not awaiting it: a stop request cancels this wait, not the job;
        # _attempt decides what becomes of the job.
        await asyncio.wait((task,), timeout=job.timeout or None)
        if task.done():
            return task.result()  # its value, or what it raised (CancelledError when aborted)
        attempt.timed_out = True
        await self._cancel(attempt, "timeout")
        raise TimeoutError(f"Job {job.key} ({job.function}) exceeded its timeout of {job.timeout}s.")

    async def _cancel(self, attempt: Attempt, why: str) -> None:
        """Cancel the attempt's task (noting ``why``) and wait until it has stopped: a sync task's thread cannot
        be stopped, so its attempt (its job's state, its slot) lasts until the thread has returned."""
        task = attempt.task
        if task is None or task.done():
            return
        attempt.cancel(why)
        await outlast(task, CANCEL_DEADLINE_S)
        if task.done():
            return
        self.log.warning(
            "Job %s did not stop within %.0fs of being cancelled; its attempt ends when it returns.",
            attempt.job.key,
            CANCEL_DEADLINE_S,
            extra={"job_key": attempt.job.key, "event": "overrun"},
        )
        await outlast(task)

    async def _record(self, attempt: Attempt, write: Callable[[], Awaitable[str]]) -> str:
        job = attempt.job
        try:
            return await write()
        except JobNotStorable as exc:
            # Redis cannot hold the result or meta: the attempt fails for good (it would fail the same way).
            error = drop_unstorable(job, exc)
            attempt.unstorable = exc
            self.log.error("%s", error, extra={"job_key": exc.key, "outcome": "failed"})
        try:
            return await self.recorder.fail(job, error, False)
        except JobNotStorable as exc:  # still, after dropping what JSON cannot hold: left to the sweep
            self.log.error("%s Left to the sweep.", exc, extra={"job_key": exc.key, "outcome": "lost"})
            return "lost"
