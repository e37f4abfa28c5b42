"""Testing code that enqueues, without a worker (and, with ``capture_jobs``, without Redis).

- ``capture_jobs()``: a context manager that records every job enqueued inside it instead of
  sending it to Redis: from ``enqueue``, ``aenqueue``, the bulk calls, and ``enqueue_on_commit``
  once its transaction commits (in a test's transaction: inside Django's
  ``captureOnCommitCallbacks(execute=True)``). The ``captured_jobs`` pytest fixture is the same
  thing for a whole test.
- ``run_jobs()``: runs the captured jobs in this process, and the jobs they enqueue, until none is
  left; outside a capture, runs what Redis really holds with a burst worker in this process.
  Returns a ``JobsRun``: the jobs that ended, their results and failures.
- ``SAQ["MODE"] = "immediate"`` in test settings (or the ``immediate_jobs`` fixture): ``enqueue``
  runs the job at once and returns it finished.

Captured and immediate jobs run as ``tasks_app.enqueueing.inline`` describes: through the worker's
task wrapper, hooks, timeout and retry rules, in the caller's thread and database connection.

For pytest, add ``pytest_plugins = ["tasks_app.testing"]`` to your top-level ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, overload

from saq.job import Job, Status

from . import conf
from .engine import debounce, pausing
from .enqueueing import diversion
from .enqueueing.building import BuiltJob
from .enqueueing.chain_inline import HeldSteps
from .enqueueing.connections import refuse_in_event_loop
from .enqueueing.inline import InlineRun, queued, run_sync
from .registry import task_name_of

__all__ = ["CapturedJob", "CapturedJobs", "JobsRun", "arun_jobs", "capture_jobs", "run_jobs"]

# A run stops with an error after this many attempts: a task that enqueues itself would never end.
DEFAULT_LIMIT = 1000
# Outcomes after which a job has ended (the others put it back on its queue, or drop a lost attempt).
ENDED = frozenset({"complete", "failed", "timeout", "aborted"})


@dataclass(frozen=True)
class CapturedJob:
    """One job as it was enqueued.

    ``options`` are the job options it got (``timeout``, ``retries`` counted after the first attempt,
    ``retry_delay``, ``retry_backoff``, ``ttl``, ``heartbeat``); ``scheduled`` is when it was due to run
    (``delay=``/``at=``), or None for now. ``job`` is the SAQ job: ``run_jobs`` updates its ``status``,
    ``attempts``, ``result`` and ``error``.
    """

    task: str
    kwargs: dict[str, Any]
    options: dict[str, Any]
    key: str
    queue: str
    scheduled: datetime | None
    job: Job = field(repr=False, compare=False)

    @classmethod
    def of(cls, built: BuiltJob, job: Job) -> CapturedJob:
        return cls(
            task=job.function,
            kwargs=dict(job.kwargs or {}),
            options={
                "timeout": job.timeout,
                "retries": job.retries - 1,
                "retry_delay": job.retry_delay,
                "retry_backoff": job.retry_backoff,
                "ttl": job.ttl,
                "heartbeat": job.heartbeat,
                "priority": job.priority,
            },
            key=job.key,
            queue=built.queue,
            scheduled=datetime.fromtimestamp(job.scheduled, tz=UTC) if job.scheduled else None,
            job=job,
        )

    @property
    def status(self) -> str:
        """queued (not run yet, or waiting for a retry), active, complete or failed."""
        return Status(self.job.status).value


class CapturedJobs(Sequence[CapturedJob]):
    """The jobs enqueued during a capture, in the order they were enqueued.

    As in Redis, a key deduplicates: enqueueing a key whose job has not ended yet records nothing and
    returns that job. A debounced enqueue (``debounce=``) instead replaces the job of its key that has not
    run yet (same place in this list, the new arguments; it runs after what was enqueued meanwhile), and
    while that job runs, waits as its successor and is recorded once it has ended, as in Redis. Nothing
    waits for the debounce window: ``run_jobs`` runs the last call at once.
    """

    def __init__(self) -> None:
        self._jobs: list[CapturedJob] = []
        self._pending: dict[tuple[str, str], CapturedJob] = {}
        self._order: deque[CapturedJob] = deque()  # not yet run, or due to be retried: in run order
        self._successors: dict[tuple[str, str], BuiltJob] = {}  # debounced calls waiting for a running job
        self._held: HeldSteps[CapturedJob] = HeldSteps()  # chain steps (a waiting one is not in _order)
        self._lock = threading.Lock()

    @overload
    def __getitem__(self, index: int) -> CapturedJob: ...
    @overload
    def __getitem__(self, index: slice) -> list[CapturedJob]: ...
    def __getitem__(self, index: int | slice) -> CapturedJob | list[CapturedJob]:
        return self._jobs[index]

    def __len__(self) -> int:
        return len(self._jobs)

    def __repr__(self) -> str:
        return f"<CapturedJobs {[f'{job.task}({job.kwargs})' for job in self._jobs]}>"

    @property
    def tasks(self) -> list[str]:
        """The task name of each job, in order."""
        return [job.task for job in self._jobs]

    def of(self, task: str | Callable[..., Any]) -> list[CapturedJob]:
        """The jobs of one task, given by name or by its function."""
        name = task if isinstance(task, str) else task_name_of(task)
        return [job for job in self._jobs if job.task == name]

    def pending(self) -> list[CapturedJob]:
        """Jobs that have not ended yet (not run, or waiting for a retry)."""
        with self._lock:
            return list(self._order)

    def clear(self) -> None:
        """Forget every job captured so far, run or not."""
        with self._lock:
            self._jobs.clear()
            self._pending.clear()
            self._order.clear()
            self._successors.clear()
            self._held = HeldSteps()

    # --- what the diversion calls -----------------------------------------------------------------

    def _record(self, built: Sequence[BuiltJob]) -> list[Job]:
        jobs = []
        with self._lock:
            for item in built:
                where = (item.queue, item.job.key)
                existing = self._pending.get(where)
                if existing is not None and debounce.of(item.job) is not None:
                    jobs.append(self._debounced(where, existing, item))
                elif existing is not None:
                    jobs.append(existing.job)
                else:
                    jobs.append(self._add(where, item).job)
        return jobs

    def _add(self, where: tuple[str, str], item: BuiltJob) -> CapturedJob:
        captured = CapturedJob.of(item, queued(item))
        self._jobs.append(captured)
        self._pending[where] = captured
        if not self._held.hold(captured):
            self._order.append(captured)
        return captured

    def _debounced(self, where: tuple[str, str], existing: CapturedJob, item: BuiltJob) -> Job:
        """A debounced call of a pending key (the lock held): the engine's rules, without the wait."""
        if existing.job.status != Status.QUEUED:  # running now: the call waits for it, the last one wins
            self._successors[where] = item
            return item.job
        captured = CapturedJob.of(item, queued(item))
        self._jobs[self._jobs.index(existing)] = captured
        if existing in self._order:
            self._order.remove(existing)
        self._order.append(captured)  # its due time moved: after what was enqueued meanwhile
        self._pending[where] = captured
        return captured.job

    def _next(self) -> CapturedJob | None:
        # The highest priority first, in enqueue order within one (as a worker takes them; the
        # engine's aging of low priorities is for a queue that never empties, which a test's is not).
        with self._lock:
            if not self._order:
                return None
            chosen = max(self._order, key=lambda captured: captured.job.priority)  # the first of the highest
            self._order.remove(chosen)
            return chosen

    def _attempted(self, captured: CapturedJob) -> None:
        with self._lock:
            if captured.job.status == Status.QUEUED:
                self._order.append(captured)  # its retry, behind what is already waiting
            else:
                where = (captured.queue, captured.key)
                del self._pending[where]
                if (successor := self._successors.pop(where, None)) is not None:
                    self._add(where, successor)
                released, dropped = self._held.ended(captured)
                self._order.extend(released)
                for step in dropped:
                    del self._pending[(step.queue, step.key)]


class _Capture:
    """The diversion target of a capture."""

    def __init__(self, jobs: CapturedJobs) -> None:
        self.jobs = jobs

    def take(self, built: Sequence[BuiltJob]) -> list[Job]:
        refuse_in_event_loop()
        return self.jobs._record(built)

    async def atake(self, built: Sequence[BuiltJob]) -> list[Job]:
        return self.jobs._record(built)


@contextmanager
def capture_jobs() -> Iterator[CapturedJobs]:
    """Record the jobs enqueued inside the block instead of sending them to Redis; yields them.

    Captures nest: the innermost one records. Process-wide: jobs enqueued from other threads are
    captured too.
    """
    capture = _Capture(CapturedJobs())
    diversion.push(capture)
    try:
        yield capture.jobs
    finally:
        diversion.pop(capture)


@dataclass
class JobsRun:
    """What ``run_jobs`` ran: every job that ended, in the order it ended."""

    jobs: list[Job]

    def __len__(self) -> int:
        return len(self.jobs)

    @property
    def results(self) -> dict[str, Any]:
        """Job key -> result, for the jobs that completed."""
        return {job.key: job.result for job in self.jobs if job.status == Status.COMPLETE}

    @property
    def failures(self) -> list[Job]:
        """The jobs that ended failed or aborted; each ``error`` holds the last attempt's traceback."""
        return [job for job in self.jobs if job.status != Status.COMPLETE]


def run_jobs(*, queues: str | Sequence[str] | None = None, limit: int = DEFAULT_LIMIT) -> JobsRun:
    """Run jobs in this process until none is left, and return them.

    Inside ``capture_jobs()``: the captured jobs that have not ended, then the jobs those enqueue, each
    retried at once while it has retries left (see ``tasks_app.enqueueing.inline``), in this thread and
    its database connection. Raises ``RuntimeError`` after ``limit`` attempts, which only a task that
    keeps enqueueing more work reaches.

    Outside one: the jobs Redis holds on ``queues`` (a queue name or a list of them; default: every
    queue), with a real worker in burst mode (``runworker --burst``), which, like any worker, sees only
    committed rows: use it in transactional tests (``django_db(transaction=True)``). Raises
    ``ServiceUnavailable`` when Redis or the database cannot be reached, and ``RuntimeError`` when a
    queue is paused.

    From async code, ``await arun_jobs(...)``.
    """
    if isinstance(capture := diversion.innermost(), _Capture):
        return run_sync(_run_captured, capture.jobs, limit)
    from .enqueueing.connections import background
    from .process.runner import run

    options = _burst_options(queues)
    background.run(_refuse_paused(options))
    ended: list[Job] = []
    run(options, on_ready=_observe_into(ended))
    return JobsRun(ended)


async def arun_jobs(*, queues: str | Sequence[str] | None = None, limit: int = DEFAULT_LIMIT) -> JobsRun:
    """``run_jobs`` for async code: the jobs run on the running loop."""
    if isinstance(capture := diversion.innermost(), _Capture):
        return await _run_captured(capture.jobs, limit)
    from .process.runner import run_workers

    options = _burst_options(queues)
    await _refuse_paused(options)
    ended: list[Job] = []
    await run_workers(options, on_ready=_observe_into(ended))
    return JobsRun(ended)


async def _run_captured(captured: CapturedJobs, limit: int) -> JobsRun:
    ended: list[Job] = []
    attempts = 0
    async with InlineRun() as run:
        while (item := captured._next()) is not None:
            attempts += 1
            if attempts > limit:
                raise RuntimeError(
                    f"run_jobs made {limit} attempts and jobs keep coming (the last: {item.task}); "
                    "does a task enqueue itself? Pass limit= to allow more."
                )
            await run.attempt(item.job, captured._held.parent_results(item))
            captured._attempted(item)
            if item.job.status != Status.QUEUED:
                ended.append(item.job)
    return JobsRun(ended)


def _burst_options(queues: str | Sequence[str] | None) -> list:
    from .process.runner import WorkerOptions

    names = _queue_names(queues) or list(conf.queues())
    return [WorkerOptions(queue=name, concurrency=conf.queue_config(name).concurrency, burst=True) for name in names]


def _queue_names(queues: str | Sequence[str] | None) -> list[str]:
    """``queues=`` as a list of names: one name is one queue (not its letters)."""
    if queues is None:
        return []
    if isinstance(queues, str):
        return [queues]
    if not isinstance(queues, Iterable) or isinstance(queues, bytes):
        raise TypeError(f"queues= takes a queue name or a list of them, not {type(queues).__name__}.")
    names = list(queues)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"queues= takes a queue name or a list of them; {name!r} is not a name.")
    return names


async def _refuse_paused(options: list) -> None:
    # A burst worker on a paused queue ends at once (with a warning), leaving its jobs unrun: a test
    # would go on as if they had run. Refuse the run instead, saying why.
    from .enqueueing.connections import make_queue

    queues = [make_queue(option.queue) for option in options]
    try:
        states = await asyncio.gather(*(pausing.paused(queue) for queue in queues))
    finally:
        await asyncio.gather(*(queue.disconnect() for queue in queues), return_exceptions=True)
    for queue, paused in zip(queues, states, strict=True):
        if paused is not None:
            raise RuntimeError(
                f"Queue {queue.name!r} is paused (by {paused.get('by')}): its jobs cannot run. "
                f"Resume it first (manage.py resumequeue {queue.name})."
            )


def _observe_into(ended: list[Job]) -> Callable[[list], None]:
    def on_ready(workers: list) -> None:
        def observe(job: Job, outcome: str, duration: float) -> None:
            if outcome in ENDED:
                ended.append(job)

        for worker in workers:
            worker.observers.append(observe)

    return on_ready


# --- pytest fixtures (with ``pytest_plugins = ["tasks_app.testing"]``) -----------------------------

try:
    import pytest
except ImportError:  # pytest is not a dependency of tasks_app: no fixtures without it
    pytest = None

if pytest is not None:

    @pytest.fixture(name="captured_jobs")
    def _captured_jobs() -> Iterator[CapturedJobs]:
        """The jobs this test enqueues, captured instead of sent to Redis (see ``capture_jobs``)."""
        with capture_jobs() as captured:
            yield captured

    @pytest.fixture(name="immediate_jobs")
    def _immediate_jobs(settings: Any) -> None:
        """``SAQ["MODE"] = "immediate"`` for this test: every enqueue runs its job at once."""
        settings.SAQ = {**conf.raw(), "MODE": conf.IMMEDIATE}
