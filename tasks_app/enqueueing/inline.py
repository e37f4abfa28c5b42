"""Running jobs in this process, with no Redis and no worker: ``SAQ["MODE"] = "immediate"``, and
``tasks_app.testing.run_jobs`` for captured jobs.

Each attempt goes through what the worker uses: the task wrapper (``process.task_wrapper.wrap``:
connection hygiene, sync tasks off the event loop), the ``SAQ["HOOKS"]`` (startup and shutdown once
per run, before and after each attempt), the job's ``timeout``, and its retries while it has attempts
left. The outcome names are the worker's (complete, failed, timeout, retrying, timeout-retrying).

What differs, on purpose, so that tests stay fast and see what they set up:

- a retry runs at once: ``retry_delay`` and its backoff are not waited for, and neither is a job's
  ``delay=`` or ``at=``;
- called from sync code, the job runs in the caller's thread and database connection, as with
  Django's ``ImmediateBackend``: async tasks through ``async_to_sync``, sync tasks in that thread. A
  task therefore sees the caller's uncommitted rows (a test's transaction), and the connection
  hygiene leaves alone a connection that is inside a transaction, since closing it would end the
  caller's transaction (Django's test client spares requests the same way);
- ``ctx`` has ``"job"`` and what the startup hooks put there, but no ``"worker"``; ``job.queue`` is None.

Arguments and results make the trip through JSON that Redis would make, so a task that returns
something Redis could not store fails here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.db import connections
from django.utils.module_loading import import_string
from saq.job import Job, Status

from .. import conf
from ..engine.execution import Attempt, Execution, Hook, as_coroutine
from ..exceptions import JobNotStorable, TaskNotFound
from ..process.task_wrapper import wrap
from ..registry import registry
from .building import BuiltJob
from .chain_inline import run_order
from .connections import refuse_in_event_loop

logger = logging.getLogger("tasks_app.inline")


def _now_ms() -> int:
    # An inline run has no Redis: its times are this process's (epoch ms, SAQ's unit).
    return int(time.time() * 1000)


class ThreadSensitive(Executor):
    """Runs sync work where Django's thread-sensitive code runs: under ``async_to_sync``, the thread
    that asked for the run, so that a sync task shares its database connection and transaction."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        call = sync_to_async(fn, thread_sensitive=True)
        return asyncio.run_coroutine_threadsafe(call(*args, **kwargs), asyncio.get_running_loop())


class InlineRun:
    """One run in this process: ``async with`` runs the startup hooks and, at the end, the shutdown
    hooks; ``attempt`` runs one attempt of a job (``engine.execution``) and records its outcome on
    the job itself (this class is its ``Recorder``)."""

    def __init__(self) -> None:
        self.executor = ThreadSensitive()
        self.hooks: dict[str, list[Hook]] = {
            name: [as_coroutine(import_string(path), self.executor) for path in paths]
            for name, paths in conf.hooks().items()
        }
        self.context: dict[str, Any] = {}
        self._functions: dict[str, Callable[..., Awaitable[Any]]] = {}
        self.execution = Execution(
            self._function,
            self,
            logger,
            before=self.hooks["before_process"],
            after=self.hooks["after_process"],
            prefix="job ran inline:",
        )

    async def __aenter__(self) -> InlineRun:
        for hook in self.hooks["startup"]:
            await hook(self.context)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for hook in self.hooks["shutdown"]:
            await hook(self.context)

    def _function(self, name: str) -> Callable[..., Awaitable[Any]] | None:
        if name not in self._functions:
            try:
                spec = registry.get(name)
            except TaskNotFound:
                return None
            run = wrap(spec, self.executor)

            async def through_json(ctx: dict[str, Any], **kwargs: Any) -> Any:
                # The trip through JSON that Redis would make.
                return await run(ctx, **json.loads(json.dumps(kwargs)))

            self._functions[name] = through_json
        return self._functions[name]

    async def attempt(self, job: Job, parent_results: list[Any] | None = None) -> str:
        """Run one attempt of ``job`` (QUEUED); afterwards it is COMPLETE, FAILED, or QUEUED again for
        its retry. Returns the worker's name for the outcome. A chain step gets ``parent_results``."""
        job.status, job.attempts, job.worker_id = Status.ACTIVE, job.attempts + 1, None
        job.started = job.touched = _now_ms()
        job.completed = 0
        ctx = {**self.context, "job": job}
        if parent_results is not None:
            ctx["parent_results"] = parent_results
        return await self.execution.run(Attempt(job), ctx)

    async def to_end(self, job: Job, parent_results: list[Any] | None = None) -> Job:
        """Attempts of ``job`` until it has ended (its retries one after the other); returns it."""
        while True:
            await self.attempt(job, parent_results)
            if job.status != Status.QUEUED:
                return job

    # --- execution.Recorder: the outcome, on the job ----------------------------------------------

    async def complete(self, job: Job, result: Any, take_next: bool = False) -> str:
        job.status, job.result, job.error, job.progress = Status.COMPLETE, result, None, 1.0
        return self._ended(job, "complete")

    async def fail(self, job: Job, error: str, timed_out: bool) -> str:
        job.status, job.error = Status.FAILED, error
        return self._ended(job, "timeout" if timed_out else "failed")

    async def retry(self, job: Job, error: str, timed_out: bool) -> str:
        # At once: retry_delay and its backoff are not waited for (see the module docstring).
        job.status, job.error, job.started, job.progress = Status.QUEUED, error, 0, 0.0
        return self._ended(job, "timeout-retrying" if timed_out else "retrying")

    async def end_abort(self, job: Job) -> str:
        raise asyncio.CancelledError  # nothing aborts an inline run but its own cancellation

    requeue = end_abort

    @staticmethod
    def _ended(job: Job, outcome: str) -> str:
        try:
            stored = json.loads(json.dumps({"result": job.result, "meta": job.meta}, allow_nan=False))
        except (TypeError, ValueError, RecursionError) as exc:
            raise JobNotStorable(job.key, exc) from None  # as on a worker: Redis could not hold it
        job.result = stored["result"]  # as a worker would read it back from Redis
        if job.status != Status.QUEUED:
            job.completed = _now_ms()
        return outcome


def queued(built: BuiltJob) -> Job:
    """The job of ``built`` as enqueueing leaves it: QUEUED, with its queue time."""
    job = built.job
    job.status, job.queued = Status.QUEUED, _now_ms()
    job.kwargs = json.loads(json.dumps(job.kwargs)) if job.kwargs else None
    return job


# --- running from sync code -----------------------------------------------------------------------


def run_sync[T](function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``await function(*args)`` from sync code, in this thread's database connections (see the
    module docstring). Raises ``RuntimeError`` when this thread runs an event loop."""
    refuse_in_event_loop()
    with _transactions_left_open():
        return async_to_sync(function)(*args)


def _leave_open() -> None:
    return None


@contextlib.contextmanager
def _transactions_left_open() -> Iterator[None]:
    """While jobs run inline, ``close_old_connections`` passes over this thread's connections that are
    inside a transaction: the transaction is the caller's."""
    held = [
        connection
        for connection in connections.all(initialized_only=True)
        if connection.in_atomic_block and "close_if_unusable_or_obsolete" not in vars(connection)
    ]
    for connection in held:
        connection.close_if_unusable_or_obsolete = _leave_open  # this object only, for this run
    try:
        yield
    finally:
        for connection in held:
            del connection.close_if_unusable_or_obsolete


# --- SAQ["MODE"] = "immediate" --------------------------------------------------------------------


class Immediate:
    """The diversion target of immediate mode: each job runs to its end before ``enqueue`` returns."""

    def take(self, built: Sequence[BuiltJob]) -> list[Job]:
        return run_sync(self.atake, built)

    async def atake(self, built: Sequence[BuiltJob]) -> list[Job]:
        items = [_Ran(queued(item)) for item in built]
        held, ready = run_order(items)  # a chain's steps run in order, each once its parents completed
        async with InlineRun() as run:
            while ready:
                item = ready.pop(0)
                await run.to_end(item.job, held.parent_results(item))
                ready += held.ended(item)[0]
        return [item.job for item in items]


@dataclass
class _Ran:
    job: Job


immediate = Immediate()
