"""Every error tasks_app raises on purpose, under one base class.

Catch ``TasksAppError`` to handle them all. Messages name the problem and the fix.
"""

from __future__ import annotations

import difflib

from redis.exceptions import ConnectionError as RedisConnectionError


def did_you_mean(name: str, known: list[str], cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known`` to a misspelt ``name``, or "" for none that close
    (``cutoff``: difflib's similarity ratio, 0 to 1)."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


class TasksAppError(Exception):
    """Base class of tasks_app's own errors."""


class TaskNotFound(TasksAppError, LookupError):
    """No task is registered under this name."""

    def __init__(self, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(
            f"Unknown task {name!r}.{hint} Registered tasks: {', '.join(sorted(known)) or 'none'}. A task is a "
            "function decorated with @task in the tasks.py of an app in INSTALLED_APPS (loaded at start-up), or "
            'a plain function listed in SAQ["TASK_FUNCTIONS"].'
        )
        self.name = name


class TaskArgumentError(TasksAppError, TypeError):
    """The arguments or job options do not fit the task."""


class LimitError(TasksAppError, ValueError):
    """A task's rate limit or concurrency limit is malformed (``@task(rate_limit=..., concurrency=...)``)."""


class JobStateConflict(TasksAppError):
    """A job state change was refused because the job is no longer in the state it assumed.

    ``stored`` is the job as Redis holds it now (None if it no longer exists). Raised, for
    example, when a worker tries to finish an attempt that the sweep already re-queued.
    """

    def __init__(self, key: str, wanted: str, stored) -> None:
        now = stored.status.value if stored is not None else "missing"
        super().__init__(f"Job {key!r} cannot become {wanted}: it is {now} now.")
        self.key = key
        self.wanted = wanted
        self.stored = stored
        self.taken = None  # a job taken in the same round trip, which still needs running


class JobNotStorable(TasksAppError, TypeError, ValueError):
    """A job cannot be written to Redis: its result or ``meta`` holds something JSON cannot (a
    datetime, a cycle, nesting thousands deep). The worker fails such an attempt without a retry."""

    def __init__(self, key: str, cause: BaseException) -> None:
        super().__init__(f"Job {key!r}: its result or meta cannot be stored as JSON ({cause}).")
        self.key = key


class ServiceUnavailable(TasksAppError):
    """Redis or the database cannot be reached; the message names the setting to fix."""


class ReplicasNotConfirmed(TasksAppError, RedisConnectionError):
    """A queue with ``wait_replicas=N``: fewer than N replicas confirmed an enqueueing write within
    ``wait_timeout`` ms. The write is on the primary but may be lost if it fails over before a replica
    has it. Also a redis-py ``ConnectionError``, so that what retries on a lost Redis (the outbox drain,
    a worker's retry writes) retries on this too; ``acknowledged`` is how many replicas did confirm;
    ``reply``: the script's own reply to the write, when one ran (what it wrote, or why it refused)."""

    reply = None

    def __init__(self, acknowledged: int, wanted: int, timeout_ms: int, setting: str) -> None:
        super().__init__(
            f"Redis confirmed this write on {acknowledged} of {wanted} replica(s) within {timeout_ms} ms "
            f"(wait_replicas={wanted} in {setting}): it is on the primary, but a failover now may lose it. "
            "Bring the replicas back (INFO replication), or lower wait_replicas."
        )
        self.acknowledged = acknowledged
        self.wanted = wanted


class ActionRefused(TasksAppError):
    """A dashboard or command action does not apply to this job or queue; the message says why."""


class UnsafeBind(TasksAppError):
    """``runworker --web`` was asked to listen off loopback without credentials."""


class WorkersGaveUp(TasksAppError):
    """``runworker --workers``/``--reload``: the worker processes cannot run; the message says why and
    what to do, and ``code`` is the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class JobInterrupted(TasksAppError):
    """In a ``django.tasks`` result: an attempt that ended without a Python exception (aborted, swept, cancelled)."""


class TaskInterrupted(TasksAppError):
    """Carries a ``BaseException`` (SystemExit, KeyboardInterrupt) out of a task or a ``django.tasks`` Task,
    so the job fails (or retries) instead of the worker exiting."""


def reason(exc: BaseException) -> str:
    """``exc``'s message as a clause to end with one's own period: never "refused.." nor empty, and one line
    (the first: a driver's second line is a question such as "Is the server running on that host...?")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else "").rstrip(".") or type(exc).__name__
