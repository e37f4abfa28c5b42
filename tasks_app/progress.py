"""A running job's progress: ``areport_progress`` in ``async def`` tasks, ``report_progress`` in sync ones
(Django's naming: the sync call, then its ``a`` twin, as ``enqueue``/``aenqueue``)::

    @task
    async def fetch_all(ctx, urls):
        for done, url in enumerate(urls, 1):
            ...
            await areport_progress(ctx, done / len(urls), f"fetched {done} of {len(urls)}")

The fraction goes to SAQ's ``job.progress`` (0.0 to 1.0) and the message to ``job.meta["progress"]``; the
dashboard and the ``django.tasks`` result show both (``message_of``). A completed job's progress is 1.0.

The write is one record compare-and-set (``engine.records.compare_and_set``) that changes only these two
fields, and only while the job is still running the same attempt (same worker, same attempt number): a
report that arrives after the job ended, was swept, aborted or re-run elsewhere is refused (returns False),
never written over the outcome. The attempt's own copy of the job is updated too, so the outcome's write
keeps the last progress. In an inline run (``run_jobs``, immediate mode) there is no Redis: only the job
object changes.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from typing import Any

from saq.job import Job, Status

from .engine import records
from .engine.execution import attempt_loop
from .enqueueing.connections import refuse_in_event_loop
from .exceptions import JobStateConflict

META_KEY = "progress"  # job.meta[META_KEY]: the last progress message
MAX_MESSAGE = 200  # characters kept of a message
RUNNING = (Status.ACTIVE, Status.ABORTING)

# The running ``django.tasks`` Task's SAQ ctx (set by ``backends.runner``): such a Task is given Django's
# ``TaskContext`` (``takes_context=True``), not ``ctx``, and passes that instead.
running_ctx: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("tasks_app_running_ctx")


def _saq_ctx(ctx: Any) -> dict[str, Any]:
    """SAQ's ``ctx`` for ``ctx`` (itself, or the one behind a ``django.tasks`` ``TaskContext``)."""
    if isinstance(ctx, dict):
        return ctx
    current = running_ctx.get(None)
    result = getattr(ctx, "task_result", None)
    if current is None or result is None or current["job"].key != result.id:
        raise ValueError(f"report_progress: {ctx!r} is neither a task's ctx nor the running Task's context.")
    return current


def _checked(fraction: float, message: str | None) -> tuple[float, str | None]:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not math.isfinite(fraction):
        raise ValueError(f"report_progress: fraction={fraction!r} must be a number from 0.0 to 1.0.")
    if not 0 <= fraction <= 1:
        raise ValueError(f"report_progress: fraction={fraction!r} is outside 0.0 to 1.0 (0.4 means 40%).")
    if message is not None and not isinstance(message, str):
        raise ValueError(f"report_progress: message={message!r} must be a string or None.")
    return float(fraction), message[:MAX_MESSAGE] if message else None


def _apply(job: Job, fraction: float, message: str | None) -> None:
    job.progress = fraction
    if message:
        job.meta[META_KEY] = message
    else:
        job.meta.pop(META_KEY, None)


async def areport_progress(ctx: dict[str, Any], fraction: float, message: str | None = None) -> bool:
    """Store ``fraction`` (0.0 to 1.0) and an optional ``message`` (at most ``MAX_MESSAGE`` characters
    kept) on the running job of ``ctx`` (the task's first argument; in a ``django.tasks`` Task with
    ``takes_context=True``, its ``TaskContext``). Returns True if written, False if the job is no
    longer this attempt's (it ended, or was swept) or kept changing under the write. Raises
    ``ValueError`` for a fraction outside 0..1 or a message that is not a string, ``KeyError`` for a
    ``ctx`` with no job."""
    fraction, message = _checked(fraction, message)
    ctx = _saq_ctx(ctx)
    job: Job = ctx["job"]
    queue = job.queue
    if queue is None:  # an inline run: the job object is the record
        _apply(job, fraction, message)
        return True

    def change(stored: Job) -> Job | None:
        if stored.status not in RUNNING or stored.worker_id != job.worker_id or stored.attempts != job.attempts:
            return None  # ended, swept, or re-run elsewhere: the outcome stands
        _apply(stored, fraction, message)
        return stored

    try:
        _, written = await records.compare_and_set(queue, job.key, change)
    except JobStateConflict:
        return False  # changed under every try (not by a heartbeat alone): the next report will tell
    if written:
        _apply(job, fraction, message)  # the outcome's write (from this copy) keeps it
    return written


def report_progress(ctx: dict[str, Any], fraction: float, message: str | None = None) -> bool:
    """``areport_progress`` for a sync task (which runs in a thread): the write is sent to the worker's
    event loop and waited for. Raises ``RuntimeError`` when called on an event loop (use
    ``await areport_progress(...)`` there), else as ``areport_progress``."""
    refuse_in_event_loop(instead="await areport_progress(...)")
    fraction, message = _checked(fraction, message)
    ctx = _saq_ctx(ctx)
    job: Job = ctx["job"]
    if job.queue is None:  # an inline run: nothing to send anywhere
        _apply(job, fraction, message)
        return True
    loop = attempt_loop.get(None)
    if loop is None:
        raise RuntimeError("report_progress() was called outside a running job's thread.")
    return asyncio.run_coroutine_threadsafe(areport_progress(ctx, fraction, message), loop).result()


def message_of(job: Job) -> str | None:
    """The last progress message stored on ``job``, or None."""
    return (job.meta or {}).get(META_KEY)
