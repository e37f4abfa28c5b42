"""Enqueueing from code: ``await enqueue(...)``, ``enqueue_sync(...)``, ``enqueue_on_commit(...)``.

Everything is validated before anything reaches Redis: the task name, the
arguments against the function's signature, the queue, and JSON-serializability.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from saq.job import Job
from saq.utils import uuid1

from . import conf
from .queues import background, get_queue
from .registry import TaskArgumentError, TaskSpec, registry

logger = logging.getLogger("tasks_app.enqueue")

TaskRef = str | Callable[..., Any]


def build_job(
    task: TaskRef,
    kwargs: dict[str, Any] | None = None,
    *,
    queue: str | None = None,
    key: str | None = None,
    delay: float | None = None,
    at: datetime | float | None = None,
    **options: Any,
) -> tuple[TaskSpec, Job]:
    """Validate a call and build the SAQ Job for it (not yet enqueued).

    ``options`` are job options (timeout, retries, retry_delay, retry_backoff, ttl,
    heartbeat); ``retries`` counts retries after the first attempt.
    """
    spec = registry.get(task)
    kwargs = dict(kwargs or {})
    unknown = set(options) - set(conf.JOB_OPTIONS)
    if unknown:
        raise TypeError(f"Unknown job option(s) {sorted(unknown)}; allowed: {list(conf.JOB_OPTIONS)}.")
    spec.validate_kwargs(kwargs)
    try:
        json.dumps(kwargs)
    except (TypeError, ValueError) as exc:
        raise TaskArgumentError(f"{spec.name}(): arguments must be JSON-serializable: {exc}.") from None
    queue_name = queue or spec.queue
    conf.queue_config(queue_name)  # raises ImproperlyConfigured naming the queues
    if delay is not None and at is not None:
        raise TypeError("Pass either delay or at, not both.")
    scheduled = 0
    if delay:
        scheduled = int(time.time() + float(delay))
    elif at is not None:
        scheduled = int(at.timestamp() if isinstance(at, datetime) else at)

    job_options = {**spec.job_options(), **{k: v for k, v in options.items() if v is not None}}
    job_options["retries"] = int(job_options.get("retries", 0)) + 1  # SAQ counts attempts
    job = Job(
        function=spec.name,
        kwargs=kwargs or None,
        key=key or uuid1(),
        scheduled=scheduled,
        **job_options,
    )
    job.meta["queue"] = queue_name
    return spec, job


async def enqueue_job(job: Job, queue_name: str) -> Job:
    """Put a built job on its queue; if its key is already pending, return that job instead."""
    queue = get_queue(queue_name)
    if await queue.enqueue(job) is None:
        existing = await queue.job(job.key)
        if existing is not None:
            return existing
    return job


def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate job options (timeout=, retries=, ...) from the task's own arguments."""
    options = {k: kwargs.pop(k) for k in conf.JOB_OPTIONS if k in kwargs}
    return options, kwargs


async def enqueue(
    task: TaskRef,
    /,
    *,
    queue: str | None = None,
    key: str | None = None,
    delay: float | None = None,
    at: datetime | float | None = None,
    **kwargs: Any,
) -> Job:
    """Enqueue ``task`` with ``kwargs``; returns the SAQ Job.

    Job options (``timeout``, ``retries``, ``retry_delay``, ``retry_backoff``,
    ``ttl``, ``heartbeat``) may be passed alongside the task's arguments; those
    names are reserved, as in SAQ. A ``key`` deduplicates: while a job with that
    key is queued, scheduled or running, enqueueing it again returns that job.
    """
    options, kwargs = _split(kwargs)
    _, job = build_job(task, kwargs, queue=queue, key=key, delay=delay, at=at, **options)
    return await enqueue_job(job, job.meta["queue"])


def enqueue_sync(
    task: TaskRef,
    /,
    *,
    queue: str | None = None,
    key: str | None = None,
    delay: float | None = None,
    at: datetime | float | None = None,
    **kwargs: Any,
) -> Job:
    """The sync twin of :func:`enqueue`, for sync views, signal handlers and scripts."""
    options, kwargs = _split(kwargs)
    _, job = build_job(task, kwargs, queue=queue, key=key, delay=delay, at=at, **options)
    return background.run(enqueue_job(job, job.meta["queue"]))


def enqueue_on_commit(
    task: TaskRef,
    /,
    *,
    using: str | None = None,
    queue: str | None = None,
    key: str | None = None,
    delay: float | None = None,
    **kwargs: Any,
) -> str:
    """Enqueue once the current transaction commits; returns the job key now.

    The call is validated immediately. An outbox row is written in the same
    transaction, so if Redis is unreachable at commit time the job is delivered
    later by the worker's outbox drain instead of being lost. On rollback
    nothing is enqueued.
    """
    from django.db import transaction

    from . import outbox

    options, kwargs = _split(kwargs)
    _, job = build_job(task, kwargs, queue=queue, key=key, delay=delay, **options)
    entry = outbox.record(job, using=using)
    transaction.on_commit(lambda: outbox.deliver(entry), using=using, robust=True)
    return job.key
