"""The Django job wrapper: connection hygiene around every job, and one log line per finished job."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections
from saq.job import Status

from .registry import TaskSpec

if TYPE_CHECKING:
    from .worker import DjangoWorker

logger = logging.getLogger("tasks_app.jobs")


class _ORMThread:
    """Connection hygiene for the one thread where the async ORM runs.

    ``sync_to_async(thread_sensitive=True)`` sends every async ORM call to a single
    thread, so its connections must be cleaned there. A thread hop costs more than
    a no-op job, so two shortcuts keep it cheap without weakening the guarantee:

    - if no query ran in that thread since the last cleanup, there is nothing new
      to clean (that cleanup already re-armed Django's health check);
    - jobs that ask while a cleanup is queued but not yet started share it: it
      runs after everything they did, so it covers them all.
    """

    def __init__(self) -> None:
        self._wrappers: list[Any] | None = None
        self._queries = 0  # queries run in the ORM thread, counted there
        self._queries_at_last_clean = 0
        self._queued: asyncio.Future | None = None
        self._clean = sync_to_async(self._clean_in_thread, thread_sensitive=True)

    def _count_query(self, execute, sql, params, many, context):
        self._queries += 1
        return execute(sql, params, many, context)

    def _clean_in_thread(self) -> None:
        self._queued = None  # from here on, a new request needs a new cleanup
        if self._wrappers is None:
            self._wrappers = [connections[alias] for alias in connections]
            for wrapper in self._wrappers:
                wrapper.execute_wrappers.append(self._count_query)
        self._queries_at_last_clean = self._queries
        close_old_connections()

    def _needs_cleaning(self) -> bool:
        if self._wrappers is None:
            return True
        return self._queries != self._queries_at_last_clean and any(w.connection is not None for w in self._wrappers)

    async def clean(self) -> None:
        if not self._needs_cleaning():
            return
        queued = self._queued
        if queued is None:
            queued = self._queued = asyncio.ensure_future(self._clean())
        # Shielded: one job's cancellation must not cancel the cleanup others wait for.
        await asyncio.shield(queued)


orm_thread = _ORMThread()


def _call_sync(func, ctx: dict, kwargs: dict) -> Any:
    close_old_connections()
    try:
        return func(ctx, **kwargs)
    finally:
        close_old_connections()


def wrap(spec: TaskSpec, worker: DjangoWorker):
    """The coroutine SAQ runs for ``spec``'s jobs."""
    func = spec.func

    if spec.is_async:

        async def run_async(ctx: dict, **kwargs: Any) -> Any:
            await orm_thread.clean()
            try:
                return await func(ctx, **kwargs)
            finally:
                await orm_thread.clean()

        run = run_async
    else:

        async def run_sync(ctx: dict, **kwargs: Any) -> Any:
            # The pool thread that runs the job also opens and cleans its connection.
            call = functools.partial(contextvars.copy_context().run, _call_sync, func, ctx, kwargs)
            return await asyncio.get_running_loop().run_in_executor(worker.pool, call)

        run = run_sync

    run.__qualname__ = run.__name__ = spec.name
    return run


def _outcome(job, exception: BaseException | None) -> str:
    if job.status == Status.COMPLETE:
        return "complete"
    if job.status == Status.ABORTED:
        return "aborted"
    if job.status == Status.FAILED:
        return "timeout" if isinstance(exception, TimeoutError) else "failed"
    if job.status == Status.QUEUED and exception is None:
        return "requeued"  # cancelled by shutdown; it runs again on a live worker
    if job.status == Status.QUEUED:
        return "timeout-retrying" if isinstance(exception, TimeoutError) else "retrying"
    return job.status.value


async def stamp_start(ctx: dict) -> None:
    ctx["started_at"] = time.monotonic()


async def log_finished_job(ctx: dict) -> None:
    """One structured line per finished attempt: task, job key, attempt, duration, outcome."""
    job = ctx.get("job")
    if job is None:
        return
    exception = ctx.get("exception")
    outcome = _outcome(job, exception)
    duration = time.monotonic() - ctx.get("started_at", time.monotonic())
    fields = {
        "task": job.function,
        "job_key": job.key,
        "queue": job.queue.name if job.queue else None,
        "attempt": job.attempts,
        "duration_ms": round(duration * 1000, 1),
        "outcome": outcome,
    }
    message = "job task=%s key=%s attempt=%d duration=%.3fs outcome=%s"
    args = (job.function, job.key, job.attempts, duration, outcome)
    if exception is None:
        logger.info(message, *args, extra=fields)
    elif isinstance(exception, TimeoutError):
        timeout_message = message + " (timed out after %ss)"
        logger.error(timeout_message, *args, job.timeout, extra=fields)
    else:
        exc_info = (type(exception), exception, exception.__traceback__)
        level = logging.WARNING if outcome.endswith("retrying") else logging.ERROR
        logger.log(level, message, *args, extra=fields, exc_info=exc_info)
