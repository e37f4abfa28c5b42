"""``@task(on_final_failure=...)``: called once a job has failed with no attempts left.

Who calls it: the process whose compare-and-set wrote the job's terminal state, and only that one, so
there is exactly one caller for each failure:

- a worker (or an inline run: ``tasks_app.testing.run_jobs``, immediate mode) whose attempt ended FAILED
  (an error or a timeout) with no retries left; never on an attempt that is retried;
- the sweep, when it ends ABORTED a job whose worker died on its last attempt (``engine/sweeping.py``).

An abort asked for (the dashboard, ``queue.abort``) is not a failure: the hook is not called.

Delivery is at most once: the call follows the write in the same process, so a process killed between
the two (SIGKILL, a lost host) loses the call, while the job's record still says FAILED (or ABORTED,
``swept: ...; no attempts left``). A job retried by hand from the dashboard that fails for good again
calls it again: that is a new failure.

The hook gets the ``saq.Job`` as written: ``job.function`` (the task name), ``job.kwargs``, ``job.key``,
``job.attempts``, ``job.status`` and ``job.error`` (the traceback, or why the sweep ended it). An
``async def`` hook runs on the worker's loop; a plain one through ``sync_to_async`` (Django's ORM
thread; in an inline run the caller's thread, so it sees a test's transaction). What it raises is
logged, never raised into the worker.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.utils.module_loading import import_string
from saq.job import Job

from .exceptions import TaskNotFound
from .registry import registry

logger = logging.getLogger("tasks_app.failures")

Hook = Callable[[Job], Any] | str  # a callable, or its dotted path


def resolve(hook: Hook) -> Callable[[Job], Any]:
    """The callable of ``hook``; raises ``ImportError`` for a dotted path that does not import, or
    ``TypeError`` if it is not callable."""
    func = import_string(hook) if isinstance(hook, str) else hook
    if not callable(func):
        raise TypeError(f"on_final_failure={hook!r} is not callable")
    return func


async def final_failure(job: Job) -> bool:
    """Call ``job``'s task's ``on_final_failure`` with ``job``; returns whether a hook ran without
    raising. Never raises: a missing task, a bad path or the hook's own error is logged."""
    try:
        hook = registry.get(job.function).on_final_failure
    except TaskNotFound:
        return False
    if hook is None:
        return False
    try:
        func = resolve(hook)
        if inspect.iscoroutinefunction(func):
            await func(job)
        else:
            await sync_to_async(func, thread_sensitive=True)(job)
    except asyncio.CancelledError:
        raise
    except BaseException:  # SystemExit too: what the hook raises goes no further than this log line
        logger.exception(
            "on_final_failure of task %s failed for job %s",
            job.function,
            job.key,
            extra={"job_key": job.key, "task": job.function},
        )
        return False
    return True
