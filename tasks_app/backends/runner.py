"""Django's Tasks framework on SAQ: the task that runs a ``django.tasks`` Task, and how it reads back.

A call like ``send_digest.enqueue(7)`` becomes one SAQ job of the internal task
``tasks_app.run_django_task``; its arguments name the Task by module path. The
TaskResult id is the SAQ job key. What Django needs and SAQ does not keep (the
worker and error of every attempt, the first start, the exact ``run_after``) lives
in ``job.meta["django_task"]``, which SAQ stores with the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from django.core.exceptions import ImproperlyConfigured
from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus, task_backends
from django.tasks.base import TASK_REFRESH_ATTRS, TaskError
from django.tasks.signals import task_finished, task_started
from django.utils.json import normalize_json
from django.utils.module_loading import import_string
from saq.job import Job, Status

from ..engine import records
from ..engine.clock import job_time
from ..engine.execution import ON_OUTCOME
from ..exceptions import JobInterrupted, TaskInterrupted
from ..process.task_wrapper import call
from ..progress import message_of, running_ctx
from ..registry import task

RUNNER = "tasks_app.run_django_task"
META = "django_task"

STATUSES = {
    Status.NEW: TaskResultStatus.READY,
    Status.QUEUED: TaskResultStatus.READY,
    Status.ACTIVE: TaskResultStatus.RUNNING,
    Status.ABORTING: TaskResultStatus.RUNNING,  # still running until its worker cancels it
    Status.COMPLETE: TaskResultStatus.SUCCESSFUL,
    Status.FAILED: TaskResultStatus.FAILED,
    Status.ABORTED: TaskResultStatus.FAILED,
}

# The last line of a traceback: "module.Class: message", or "Class" for builtins.
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::\s|$)")


def as_stored(value: Any) -> Any:
    """``value`` as Redis will hold it and ``get_result`` read it back (JSON: ``{1: "x"}`` becomes ``{"1": "x"}``,
    tuples lists); raises ``TypeError`` for what JSON cannot hold. A NaN is left for the worker to refuse."""
    return json.loads(json.dumps(normalize_json(value)))


def is_runner(function: str) -> bool:
    return function == RUNNER


# --- bookkeeping in job.meta ------------------------------------------------------------------------


def bookkeeping(job: Job) -> dict[str, Any]:
    return job.meta.setdefault(META, {})


def error_from_text(text: str, attempt: int) -> dict[str, Any]:
    """A TaskError record for an attempt SAQ ended itself (timeout, abort, sweep) from its error text."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    match = _EXCEPTION_LINE.match(lines[-1]) if lines and "Traceback" in text else None
    if match:
        name = match.group(1)
        path = name if "." in name else f"builtins.{name}"
    else:
        path = f"{JobInterrupted.__module__}.{JobInterrupted.__qualname__}"
    return {"attempt": attempt, "exception_class_path": path, "traceback": text}


def _has_error_for(book: dict[str, Any], attempt: int) -> bool:
    return any(error.get("attempt") == attempt for error in book.get("errors", []))


def note_attempt(job: Job, worker_id: str | None) -> None:
    """Record the attempt that is starting, and the previous one's error if SAQ ended it (e.g. a timeout)."""
    book = bookkeeping(job)
    previous = job.attempts - 1
    if previous >= 1 and job.error and not _has_error_for(book, previous):
        book.setdefault("errors", []).append(error_from_text(job.error, previous))
    book.setdefault("worker_ids", []).append(worker_id or job.worker_id or "")
    book.setdefault("started", job.started)
    book["attempted"] = job.started


async def note_running(job: Job) -> None:
    """Store the starting attempt's bookkeeping on ``job``'s record (``records.change_attempt``: what an abort
    wrote since the take, its reason and audit, is kept)."""
    book = copy.deepcopy(bookkeeping(job))

    def noted(stored: Job) -> None:
        stored.meta[META] = book

    await records.change_attempt(job.queue, job.worker_id, job, noted)


def note_error(job: Job, exc: BaseException) -> None:
    kind = type(exc)
    bookkeeping(job).setdefault("errors", []).append(
        {
            "attempt": job.attempts,
            "exception_class_path": f"{kind.__module__}.{kind.__qualname__}",
            "traceback": "".join(traceback.format_exception(exc)),
        }
    )


# --- SAQ Job -> TaskResult --------------------------------------------------------------------------


def load_task(path: str) -> Task:
    try:
        task = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"The django.tasks Task {path!r} cannot be imported: {exc}.") from exc
    if not isinstance(task, Task):
        raise ImproperlyConfigured(f"{path!r} is not a django.tasks Task; decorate the function with @task.")
    return task


def _task_as_enqueued(job: Job) -> Task:
    """The module-level Task, with the queue, backend and run_after of this call (not re-validated)."""
    kwargs = job.kwargs or {}
    task = copy.copy(load_task(kwargs["task_path"]))
    run_after = bookkeeping(job).get("run_after")
    object.__setattr__(task, "backend", kwargs["backend_alias"])
    object.__setattr__(task, "queue_name", job.queue.name if job.queue else task.queue_name)
    object.__setattr__(task, "run_after", datetime.fromisoformat(run_after) if run_after else None)
    return task


@dataclass(frozen=True, slots=True, kw_only=True)
class SAQTaskResult(TaskResult):
    """Django's TaskResult, with the job's progress: ``progress`` (0.0 to 1.0; 1.0 once it succeeded) and
    ``progress_message`` (the last ``report_progress`` message, or None). ``refresh`` reloads them too."""

    progress: float = 0.0
    progress_message: str | None = None

    def _copy(self, refreshed: TaskResult) -> None:
        # One read of the job for Django's attributes and the progress alike.
        for attr in (*TASK_REFRESH_ATTRS, "progress", "progress_message"):
            object.__setattr__(self, attr, getattr(refreshed, attr))

    def refresh(self) -> None:
        self._copy(self.task.get_backend().get_result(self.id))

    async def arefresh(self) -> None:
        self._copy(await self.task.get_backend().aget_result(self.id))


def result_from_job(job: Job, status: TaskResultStatus | None = None, return_value: Any = None) -> TaskResult:
    """The TaskResult a SAQ job stands for; ``status`` overrides the stored one (used inside the worker)."""
    kwargs = job.kwargs or {}
    book = bookkeeping(job)
    status = status or STATUSES[job.status]
    worker_ids = list(book.get("worker_ids", []))
    if len(worker_ids) < job.attempts:  # attempts that never reached the runner
        worker_ids += [job.worker_id or ""] * (job.attempts - len(worker_ids))
    errors = list(book.get("errors", []))
    # An attempt SAQ ended itself (timeout, abort, sweep) left only job.error behind.
    ended_by_saq = job.status in (Status.FAILED, Status.ABORTED, Status.QUEUED) and bool(job.error)
    if ended_by_saq and (job.attempts or job.status == Status.ABORTED) and not _has_error_for(book, job.attempts):
        errors.append(error_from_text(job.error, job.attempts))
    finished = status in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
    # The runner notes an attempt a moment after the take has marked it running (job.started):
    # until then, and for attempts that never reached it, the take's time is the one known.
    attempted = max(book.get("attempted") or 0, job.started or 0)
    result = SAQTaskResult(
        task=_task_as_enqueued(job),
        id=job.key,
        status=status,
        enqueued_at=job_time(job.queued),
        started_at=job_time(book.get("started") or attempted),
        finished_at=job_time(job.completed or book.get("finished")) if finished else None,
        last_attempted_at=job_time(attempted),
        args=kwargs.get("task_args", []),
        kwargs=kwargs.get("task_kwargs", {}),
        backend=kwargs["backend_alias"],
        errors=[TaskError(exception_class_path=e["exception_class_path"], traceback=e["traceback"]) for e in errors],
        worker_ids=worker_ids,
        progress=job.progress,
        progress_message=message_of(job),
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", job.result if return_value is None else return_value)
    return result


# --- running one attempt in the worker --------------------------------------------------------------


# What ``task_finished`` says of each outcome the worker wrote (``engine/execution.py``); "lost" and "unknown"
# (another process owns the job now, or nothing says what was kept) send nothing.
FINISHED = {
    "complete": TaskResultStatus.SUCCESSFUL,
    "retrying": TaskResultStatus.READY,  # it runs again
    "timeout-retrying": TaskResultStatus.READY,
    "requeued": TaskResultStatus.READY,  # put back at a stop (or a database outage), its attempt not used up
    "failed": TaskResultStatus.FAILED,
    "timeout": TaskResultStatus.FAILED,
    "aborted": TaskResultStatus.FAILED,
}


def _failed(job: Job, exc: BaseException) -> NoReturn:
    """Record ``exc`` as the attempt's error and raise it (a ``BaseException`` that is not an ``Exception``
    as ``TaskInterrupted``, so the job fails instead of the worker exiting)."""
    note_error(job, exc)
    bookkeeping(job)["finished"] = int(datetime.now(UTC).timestamp() * 1000)
    if isinstance(exc, Exception):
        raise exc
    raise TaskInterrupted(f"{type(exc).__name__}: {exc}") from exc


@task(name=RUNNER)
async def run_django_task(
    ctx: dict[str, Any], task_path: str, task_args: list[Any], task_kwargs: dict[str, Any], backend_alias: str
) -> Any:
    """Run one attempt of the django.tasks Task at ``task_path`` inside the worker, sending Django's signals."""
    job: Job = ctx["job"]
    task = load_task(task_path)
    sender = type(task_backends[backend_alias])
    worker = ctx.get("worker")
    note_attempt(job, getattr(worker, "id", None))
    await note_running(job)  # other processes see RUNNING with this attempt's worker id
    running = result_from_job(job, status=TaskResultStatus.RUNNING)

    async def finished(outcome: str) -> None:
        # Sent once the worker has written the outcome (a timeout, an abort or a stop may have won over
        # what the Task did); the Task's value is the job's result by then.
        if (status := FINISHED.get(outcome)) is None:
            return
        done, error = result_from_job(job, status=status), ctx.get("exception")

        async def send() -> None:
            if error is None:
                await task_finished.asend(sender=sender, task_result=done)
                return
            try:  # in a handler, as Django sends it: its log_task_finished reads the traceback from exc_info()
                raise error
            except BaseException:
                await task_finished.asend(sender=sender, task_result=done)

        # Shielded: a forced stop now ends this wait, not the receivers (they go on while the process does).
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(send())

    # Before task_started's receivers: an attempt ended while they run (a timeout, an abort) sends both.
    ctx[ON_OUTCOME].append(finished)
    await task_started.asend(sender=sender, task_result=running)
    args = [TaskContext(task_result=running), *task_args] if task.takes_context else list(task_args)
    running_ctx.set(ctx)  # for report_progress(context, ...): this attempt's task and its thread only
    try:
        value = as_stored(await call(task.func, *args, **task_kwargs))
    except asyncio.CancelledError as exc:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # aborted, timed out or shut down: the worker records how the attempt ended
        _failed(job, exc)  # the task's own (it awaited something cancelled): an error as any other
    except BaseException as exc:
        _failed(job, exc)
    bookkeeping(job)["finished"] = int(datetime.now(UTC).timestamp() * 1000)
    return value
