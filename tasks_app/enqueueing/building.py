"""Building a job: the task call validated, with its options resolved, before anything reaches Redis.

A job's options travel in a straight line: the settings defaults, overlaid by the task's
``@task(...)`` options, overlaid by the call's own, into SAQ's ``Job``.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone
from saq.job import Job

from .. import conf
from ..engine import clock
from ..engine import debounce as debouncing
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
    debounce: float | None = None,
    debounce_max: float | None = None,
    **options: Any,
) -> BuiltJob:
    """Validate a call of ``task`` and build its SAQ job (not yet enqueued).

    ``kwargs`` must bind to the task's signature, fit its annotations and be JSON-serializable
    (``TaskSpec.validate_kwargs``). ``delay`` is in
    seconds (0 to ``conf.MAX_SECONDS``); ``at`` is a datetime (naive means ``TIME_ZONE``) or epoch
    seconds, at most ten years away, and a time in the past means at once; give one or neither. ``options``
    are job options (timeout, retries, retry_delay, retry_backoff, ttl, heartbeat);
    ``retries`` counts retries after the first attempt. ``debounce`` (seconds, with an optional
    ``debounce_max`` ceiling) needs a ``key`` and excludes ``delay``/``at``: see ``engine/debounce.py``;
    a task's ``@task(debounce=...)`` applies to its calls that give a ``key``.

    Raises ``TaskNotFound``, ``TaskArgumentError``, or ``ImproperlyConfigured`` for an unknown queue.
    """
    spec = registry.get(task)
    kwargs = dict(kwargs or {})
    unknown = set(options) - set(conf.JOB_OPTIONS)
    if unknown:
        raise TaskArgumentError(f"Unknown job option(s) {sorted(unknown)}; allowed: {list(conf.JOB_OPTIONS)}.")
    spec.validate_kwargs(kwargs)
    queue_name = queue or spec.queue
    conf.queue_config(queue_name)  # raises ImproperlyConfigured naming the configured queues
    given = {k: v for k, v in options.items() if v is not None}
    problems = conf.job_option_problems(given)
    if problems:
        raise TaskArgumentError(f"{spec.name}(): {' '.join(problems)}")
    window = _debounce(spec, key, debounce, debounce_max, delay, at)
    scheduled = _scheduled(delay if window is None else window[0], at)

    job_options = {**spec.job_options(), **given}
    job_options["retries"] = int(job_options.get("retries", 0)) + 1  # SAQ counts attempts
    job = Job(
        function=spec.name, kwargs=kwargs or None, key=key or str(uuid.uuid1()), scheduled=scheduled, **job_options
    )
    if window is not None:
        debouncing.mark(job, *window)
    elif delay:
        clock.delay(job, delay)  # resolved on Redis's clock when enqueued; ``scheduled`` is this host's estimate
    return BuiltJob(queue=queue_name, job=job)


def _debounce(
    spec: Any, key: str | None, seconds: float | None, maximum: float | None, delay: Any, at: Any
) -> list[float] | None:
    """The call's debounce window ``[seconds, max]`` (its own, else its task's when it has a key), or None."""
    if seconds is None and maximum is None:
        return spec.debounce if key and spec.debounce else None
    if problems := debouncing.problems(seconds, maximum):
        raise TaskArgumentError(f"{spec.name}(): {' '.join(problems)}")
    if not key:
        raise TaskArgumentError(
            f"{spec.name}(): debounce= needs key=: the calls of one burst share a key (e.g. key=f'index:{{pk}}')."
        )
    if delay is not None or at is not None:
        raise TaskArgumentError(f"{spec.name}(): pass debounce= or delay=/at=, not both.")
    return debouncing.window(seconds, maximum)


def _scheduled(delay: float | None, at: datetime | float | None) -> int:
    """Epoch seconds the job is due at, or 0 for at once. A time in the past means at once."""
    if delay is not None and at is not None:
        raise TaskArgumentError("Pass either delay or at, not both.")
    if delay is not None:
        if problem := conf.seconds_problem("delay", delay):
            raise TaskArgumentError(problem)
        return int(time.time() + delay) if delay else 0
    if at is None:
        return 0
    if isinstance(at, datetime):
        at = (timezone.make_aware(at) if timezone.is_naive(at) else at).timestamp()  # naive: in TIME_ZONE
    elif isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
        raise TaskArgumentError(f"at={at!r} must be an aware datetime or epoch seconds.")
    if at > time.time() + conf.MAX_SECONDS:
        raise TaskArgumentError(f"at={at!r} is more than {conf.MAX_SECONDS} seconds (ten years) away.")
    return max(int(at), 0)
