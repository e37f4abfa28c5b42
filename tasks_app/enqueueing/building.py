"""Building a job: the task call validated, with its options resolved, before anything reaches Redis.

A job's options travel in a straight line: the settings defaults, overlaid by the task's
``@task(...)`` options, overlaid by the call's own, into SAQ's ``Job``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from saq.job import Job
from saq.utils import uuid1

from .. import conf
from ..exceptions import TaskArgumentError
from ..registry import registry

TaskRef = str | Callable[..., Any]


@dataclass(frozen=True)
class BuiltJob:
    """A validated job and the name of the queue it goes to."""

    queue: str
    job: Job


def split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate job options (``timeout=``, ``retries=``, ...) from the task's own arguments."""
    options = {k: kwargs.pop(k) for k in conf.JOB_OPTIONS if k in kwargs}
    return options, kwargs


def build_job(
    task: TaskRef,
    kwargs: dict[str, Any] | None = None,
    *,
    queue: str | None = None,
    key: str | None = None,
    delay: float | None = None,
    at: datetime | float | None = None,
    **options: Any,
) -> BuiltJob:
    """Validate a call of ``task`` and build its SAQ job (not yet enqueued).

    ``kwargs`` must bind to the task's signature and be JSON-serializable. ``delay`` is in
    seconds; ``at`` is an aware datetime or epoch seconds; give one or neither. ``options``
    are job options (timeout, retries, retry_delay, retry_backoff, ttl, heartbeat);
    ``retries`` counts retries after the first attempt.

    Raises ``TaskNotFound``, ``TaskArgumentError``, or ``ImproperlyConfigured`` for an unknown queue.
    """
    spec = registry.get(task)
    kwargs = dict(kwargs or {})
    unknown = set(options) - set(conf.JOB_OPTIONS)
    if unknown:
        raise TaskArgumentError(f"Unknown job option(s) {sorted(unknown)}; allowed: {list(conf.JOB_OPTIONS)}.")
    spec.validate_kwargs(kwargs)
    try:
        json.dumps(kwargs)
    except (TypeError, ValueError) as exc:
        raise TaskArgumentError(f"{spec.name}(): arguments must be JSON-serializable: {exc}.") from None
    queue_name = queue or spec.queue
    conf.queue_config(queue_name)  # raises ImproperlyConfigured naming the configured queues
    if delay is not None and at is not None:
        raise TaskArgumentError("Pass either delay or at, not both.")
    scheduled = 0
    if delay:
        scheduled = int(time.time() + float(delay))
    elif at is not None:
        scheduled = int(at.timestamp() if isinstance(at, datetime) else at)

    job_options = {**spec.job_options(), **{k: v for k, v in options.items() if v is not None}}
    job_options["retries"] = int(job_options.get("retries", 0)) + 1  # SAQ counts attempts
    job = Job(function=spec.name, kwargs=kwargs or None, key=key or uuid1(), scheduled=scheduled, **job_options)
    return BuiltJob(queue=queue_name, job=job)
