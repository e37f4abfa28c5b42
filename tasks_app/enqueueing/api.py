"""Enqueueing from code, with ``django.tasks``' names: ``enqueue`` (sync) and ``aenqueue`` (async),
``enqueue_on_commit``, and their bulk twins ``enqueue_many``, ``aenqueue_many`` and
``enqueue_many_on_commit``. ``enqueue_sync`` is a deprecated alias of ``enqueue``.

Everything is validated before anything reaches Redis: the task name, the arguments
against the function's signature, the queue, and JSON-serializability. A test's capture, or
immediate mode, takes the jobs instead of Redis (``diversion.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError
from saq.job import Job

from .. import conf
from ..engine import records
from ..exceptions import TaskArgumentError, TasksAppError
from ..redaction import redact_url
from . import diversion, outbox
from .building import BuiltJob, TaskRef, build_job, split_options
from .connections import get_queue, refuse_in_event_loop
from .sync_client import sync_queue

# Jobs per Redis pipeline in enqueue_many: large enough to amortise round trips, small enough
# that one pipeline never holds Redis for long.
CHUNK = 500


async def submit(built: BuiltJob) -> Job:
    """Put a built job on its queue; if a job with its key is pending, return that job instead."""
    if (target := diversion.current()) is not None:
        return (await target.atake([built]))[0]
    return await _to_redis(built)


def submit_sync(built: BuiltJob) -> Job:
    """``submit`` from sync code: on the calling thread's own connection (``sync_client.py``), no hop to
    the background loop."""
    if (target := diversion.current()) is not None:
        return target.take([built])[0]
    with _NamingTheQueue(built.queue):
        return sync_queue(built.queue).submit(built.job)[0]


async def _to_redis(built: BuiltJob) -> Job:
    with _NamingTheQueue(built.queue):
        job, _ = await records.submit(get_queue(built.queue), built.job)
    return job


class _NamingTheQueue:
    """``with _NamingTheQueue(queue):`` redis-py's errors leave with a note (their type unchanged: callers catch
    redis-py's errors) saying which queue's Redis failed, where it is and which setting to fix: their own message
    names only a host, or none. A class rather than ``contextlib.contextmanager``: it sits on every enqueue."""

    __slots__ = ("queue",)

    def __init__(self, queue: str) -> None:
        self.queue = queue

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, traceback: object) -> bool:
        # TasksAppError: ours (ReplicasNotConfirmed), whose message says it all.
        if isinstance(exc, (RedisError, OSError)) and not isinstance(exc, TasksAppError):
            url, setting = conf.queue_config(self.queue).url, conf.setting_name("QUEUES", self.queue, "URL")
            note = f"tasks_app: queue {self.queue!r} is at {redact_url(url)} ({setting}): "
            note += "start that Redis, or fix the setting."
            if note not in getattr(exc, "__notes__", ()):
                exc.add_note(note)
        return False


def _build(
    task: TaskRef,
    kwargs: dict[str, Any],
    *,
    queue: str | None = None,
    key: str | None = None,
    delay: float | None = None,
    at: datetime | float | None = None,
    debounce: float | None = None,
    debounce_max: float | None = None,
) -> BuiltJob:
    """Build the job of one call: ``kwargs`` are the task's arguments and job options, together."""
    options, kwargs = split_options(kwargs)
    return build_job(
        task, kwargs, queue=queue, key=key, delay=delay, at=at, debounce=debounce, debounce_max=debounce_max,
        **options,
    )  # fmt: skip


async def aenqueue(
    task: TaskRef,
    /,
    *,
    queue: str | None = None,
    key: str | None = None,
    delay: float | None = None,
    at: datetime | float | None = None,
    debounce: float | None = None,
    debounce_max: float | None = None,
    **kwargs: Any,
) -> Job:
    """Enqueue ``task`` with ``kwargs``; returns the SAQ Job.

    Job options (``timeout``, ``retries``, ``retry_delay``, ``retry_backoff``, ``ttl``,
    ``heartbeat``) may be passed alongside the task's arguments; those names are reserved,
    as in SAQ. A ``key`` deduplicates: while a job with that key is queued, scheduled or
    running, enqueueing it again returns that job. While it is being aborted, the new job
    is queued the moment the abort ends.

    ``debounce`` (seconds; needs ``key``, excludes ``delay``/``at``): a burst of calls with one key runs
    once, ``debounce`` seconds after the last call, with the last call's arguments, but no later than
    ``debounce_max`` seconds (default: 10 windows) after the first; a call made while the job runs
    queues one more run after it (``tasks_app/engine/debounce.py``). The bulk calls take both too.
    """
    return await submit(
        _build(task, kwargs, queue=queue, key=key, delay=delay, at=at, debounce=debounce, debounce_max=debounce_max)
    )


def enqueue(
    task: TaskRef,
    /,
    *,
    queue: str | None = None,
    key: str | None = None,
    delay: float | None = None,
    at: datetime | float | None = None,
    debounce: float | None = None,
    debounce_max: float | None = None,
    **kwargs: Any,
) -> Job:
    """The sync twin of :func:`aenqueue`, with the same arguments, for sync views, signal handlers and scripts.

    Raises what ``aenqueue`` raises, and ``RuntimeError`` when called from a running event loop (this
    is also what code written for the old async ``enqueue``, ``await enqueue(...)``, meets: the
    message names ``await aenqueue(...)``).
    """
    # Before building: code that still awaits the old async enqueue learns the new name first.
    refuse_in_event_loop(instead="await aenqueue(...)")
    built = _build(task, kwargs, queue=queue, key=key, delay=delay, at=at, debounce=debounce, debounce_max=debounce_max)
    return submit_sync(built)


def enqueue_on_commit(
    task: TaskRef,
    /,
    *,
    using: str | None = None,
    queue: str | None = None,
    key: str | None = None,
    delay: float | None = None,
    at: datetime | float | None = None,
    debounce: float | None = None,
    debounce_max: float | None = None,
    **kwargs: Any,
) -> str:
    """Enqueue once the current transaction on ``using`` commits; returns the job key now.

    The call is validated immediately. An outbox row is written in the same transaction,
    so if Redis is unreachable at commit time the job is delivered later by any worker's
    outbox drain instead of being lost. On rollback nothing is enqueued.
    """
    built = _build(task, kwargs, queue=queue, key=key, delay=delay, at=at, debounce=debounce, debounce_max=debounce_max)
    outbox.on_commit(built, using=using)
    return built.job.key


def enqueue_many_on_commit(
    task: TaskRef,
    calls: Iterable[dict[str, Any]],
    /,
    *,
    keys: Sequence[str | None] | None = None,
    using: str | None = None,
    queue: str | None = None,
    delay: float | None = None,
    at: datetime | float | None = None,
    **options: Any,
) -> list[str]:
    """:func:`enqueue_on_commit` for many calls of ``task``: one outbox INSERT now, one Redis round
    trip per 500 jobs on commit. Returns the job keys, in order."""
    built = _build_many(task, calls, keys, queue=queue, delay=delay, at=at, **options)
    outbox.on_commit_many(built, using=using)
    return [item.job.key for item in built]


def _build_many(
    task: TaskRef, calls: Iterable[dict[str, Any]], keys: Sequence[str | None] | None, **options: Any
) -> list[BuiltJob]:
    calls = _calls(calls)
    if isinstance(keys, str):
        raise TaskArgumentError(f"keys must be a list of job keys, one per call, not the string {keys!r}.")
    if keys is not None and len(keys) != len(calls):
        raise ValueError(f"keys has {len(keys)} entries for {len(calls)} calls.")
    return [build_job(task, call, key=keys[i] if keys else None, **options) for i, call in enumerate(calls)]


_CALLS_SHAPE = "a list of dicts of keyword arguments, one per job: [{'name': 'a'}, {'name': 'b'}]"


def _calls(calls: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``calls`` as a list, each item checked to be a dict of keyword arguments (``{}`` for none)."""
    if isinstance(calls, (Mapping, str, bytes)) or not isinstance(calls, Iterable):
        raise TaskArgumentError(f"calls must be {_CALLS_SHAPE}; got {type(calls).__name__}.")
    calls = list(calls)
    for index, call in enumerate(calls):
        if not isinstance(call, Mapping):
            raise TaskArgumentError(
                f"calls[{index}] is {type(call).__name__}, not a dict of keyword arguments; "
                f"calls must be {_CALLS_SHAPE}."
            )
    return calls


async def aenqueue_many(
    task: TaskRef,
    calls: Iterable[dict[str, Any]],
    /,
    *,
    keys: Sequence[str | None] | None = None,
    queue: str | None = None,
    delay: float | None = None,
    at: datetime | float | None = None,
    **options: Any,
) -> list[Job]:
    """Enqueue one job of ``task`` per kwargs dict in ``calls``, one Redis round trip per 500.

    ``keys``, if given, has one key (or None) per call. Every call is validated before any is
    sent. Returns the jobs in order; a call whose key is pending gets that pending job.
    """
    return await submit_many(_build_many(task, calls, keys, queue=queue, delay=delay, at=at, **options))


async def submit_many(built: Sequence[BuiltJob]) -> list[Job]:
    """Put built jobs on their queues, pipelined in chunks; pending keys return their pending job."""
    if (target := diversion.current()) is not None:
        return await target.atake(built)
    return await _to_redis_many(built)


async def _to_redis_many(built: Sequence[BuiltJob]) -> list[Job]:
    jobs: list[Job | None] = [None] * len(built)
    for name, indexes in _by_queue(built).items():
        for start in range(0, len(indexes), CHUNK):
            chunk = indexes[start : start + CHUNK]
            with _NamingTheQueue(name):
                results = await records.submit_many(get_queue(name), [built[i].job for i in chunk])
            for index, (job, _) in zip(chunk, results, strict=True):
                jobs[index] = job
    return jobs  # type: ignore[return-value]


def _to_redis_many_sync(built: Sequence[BuiltJob]) -> list[Job]:
    """``_to_redis_many`` from the calling thread (``sync_client.py``), with a chunk in flight while the
    next is serialized."""
    jobs: list[Job | None] = [None] * len(built)
    for name, indexes in _by_queue(built).items():
        with _NamingTheQueue(name):
            results = sync_queue(name).submit_many([built[i].job for i in indexes], chunk=CHUNK)
        for index, (job, _) in zip(indexes, results, strict=True):
            jobs[index] = job
    return jobs  # type: ignore[return-value]


def _by_queue(built: Sequence[BuiltJob]) -> dict[str, list[int]]:
    """The positions of ``built``'s jobs, by queue name."""
    by_queue: dict[str, list[int]] = {}
    for index, item in enumerate(built):
        by_queue.setdefault(item.queue, []).append(index)
    return by_queue


def enqueue_many(
    task: TaskRef,
    calls: Iterable[dict[str, Any]],
    /,
    *,
    keys: Sequence[str | None] | None = None,
    queue: str | None = None,
    delay: float | None = None,
    at: datetime | float | None = None,
    **options: Any,
) -> list[Job]:
    """The sync twin of :func:`aenqueue_many`, which documents the options.

    Raises ``RuntimeError`` when called from a running event loop: there, ``await aenqueue_many(...)``.
    """
    refuse_in_event_loop(instead="await aenqueue_many(...)")
    built = _build_many(task, calls, keys, queue=queue, delay=delay, at=at, **options)
    if (target := diversion.current()) is not None:
        return target.take(built)
    return _to_redis_many_sync(built)


# --- deprecated names (removed in the release after next) ---------------------------------------------


def enqueue_sync(task: TaskRef, /, **kwargs: Any) -> Job:
    """Deprecated alias of :func:`enqueue` (the sync call), kept for one release; warns ``DeprecationWarning``."""
    warnings.warn(
        "tasks_app.enqueue_sync() is deprecated and will be removed in the next release: "
        "call tasks_app.enqueue(), which is now the sync call (the async one is tasks_app.aenqueue()).",
        DeprecationWarning,
        stacklevel=2,
    )
    return enqueue(task, **kwargs)
