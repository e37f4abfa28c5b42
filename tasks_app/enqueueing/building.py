"""Building a job: the task call validated, with its options resolved, before anything reaches Redis.

A job's options travel in a straight line: the settings defaults, overlaid by the task's
``@task(...)`` options, overlaid by the call's own, into SAQ's ``Job``.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.signals import setting_changed
from django.utils import timezone
from saq.job import Job

from .. import conf, tracing
from ..engine import clock
from ..engine import debounce as debouncing
from ..engine import limits as limiting
from ..exceptions import TaskArgumentError
from ..registry import TaskSpec, registry

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


# A key is a Redis key's tail, a log field and a dashboard URL's part, and an outbox row holds 255 characters.
MAX_KEY_LENGTH = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # and the line and paragraph separators


def _check_key(spec: TaskSpec, key: Any) -> None:
    if not isinstance(key, str):  # stored as given: 123 and "123" would be two jobs' keys
        raise TaskArgumentError(f"{spec.name}(): key={key!r:.80} must be a str, not {type(key).__name__}.")
    if key == "":  # SAQ would give each such job a key of its own: no two would ever be one
        raise TaskArgumentError(f"{spec.name}(): key='' names no job: give a non-empty key, or none for a new one.")
    if len(key) > MAX_KEY_LENGTH:  # enqueue_on_commit's outbox row would fail at the commit
        raise TaskArgumentError(
            f"{spec.name}(): key={key!r:.40}... is {len(key)} characters; at most {MAX_KEY_LENGTH}: use a digest "
            "(hashlib.sha256(...).hexdigest()) of a longer one."
        )
    if (bad := _CONTROL.search(key)) is not None:  # a newline in a key would forge log lines
        raise TaskArgumentError(
            f"{spec.name}(): key={key!r:.80} holds the control character {bad.group()!r}: keys are printable text."
        )
    if {".", ".."} & set(key.split("/")):  # its dashboard URL would be rewritten by browsers: another job's, or none
        raise TaskArgumentError(
            f"{spec.name}(): key={key!r:.80} has a '.' or '..' between slashes, which browsers rewrite in its "
            "dashboard page's URL: use another separator there, such as ':'."
        )


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
    if key is not None:
        _check_key(spec, key)
    kwargs = dict(kwargs or {})
    if options:
        unknown = set(options) - set(conf.JOB_OPTIONS)
        if unknown:
            raise TaskArgumentError(f"Unknown job option(s) {sorted(unknown)}; allowed: {list(conf.JOB_OPTIONS)}.")
    spec.validate_kwargs(kwargs)
    queue_name = queue or spec.queue
    _settings.check_queue(queue_name)
    given = {k: v for k, v in options.items() if v is not None}
    if given and (problems := conf.job_option_problems(given)):
        raise TaskArgumentError(f"{spec.name}(): {' '.join(problems)}")
    window = _debounce(spec, key, debounce, debounce_max, delay, at)
    if window is not None:
        delay = window[0]
    scheduled = _scheduled(delay, at) if delay is not None or at is not None else 0

    job_options = {**_settings.job_options(spec), **given}
    job_options["retries"] = int(job_options.get("retries", 0)) + 1  # SAQ counts attempts
    job = Job(function=spec.name, kwargs=kwargs or None, key=key or new_key(), scheduled=scheduled, **job_options)
    if spec.limits is not None:
        limiting.mark(job, spec.limits)  # its limiter keys, from its arguments: engine/limits.py
    if window is not None:
        debouncing.mark(job, *window)
    elif delay:
        clock.delay(job, delay)  # resolved on Redis's clock when enqueued; ``scheduled`` is this host's estimate
    if tracing.active():
        tracing.start_producer(job, queue_name)  # its context goes in job.meta, to link the run to this call
    return BuiltJob(queue=queue_name, job=job)


def new_key() -> str:
    """A job key of its own: a random (version 4) UUID, as ``str(uuid.uuid4())`` writes it, from 122 bits of
    ``os.urandom``. Made here at a quarter of ``uuid.uuid4()``'s cost and a sixth of ``uuid.uuid1()``'s (whose
    ``uuid_generate_time_safe`` locks a clock file, and whose key would carry the host's MAC address)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class _FromSettings:
    """What every job reads from the ``SAQ`` setting, read once until it changes (``setting_changed``):
    the configured queue names, and each task's job options (settings defaults, then the task's own)."""

    def __init__(self) -> None:
        self.queues: frozenset[str] = frozenset()
        self._job_options: dict[int, tuple[TaskSpec, dict[str, Any]]] = {}

    def check_queue(self, name: str) -> None:
        """Raises ``ImproperlyConfigured`` naming the configured queues, unless ``name`` is one."""
        if name not in self.queues:
            conf.queue_config(name)
            self.queues = frozenset(conf.queues())

    def job_options(self, spec: TaskSpec) -> dict[str, Any]:
        """``spec.job_options()``; not to be changed by the caller."""
        cached = self._job_options.get(id(spec))
        if cached is None or cached[0] is not spec:  # the spec is held, so its id is not reused while cached
            cached = self._job_options[id(spec)] = (spec, spec.job_options())
        return cached[1]

    def forget(self, **kwargs: Any) -> None:
        if kwargs.get("setting") == "SAQ":
            self.queues, self._job_options = frozenset(), {}


_settings = _FromSettings()
setting_changed.connect(_settings.forget, dispatch_uid="tasks_app.building")


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
