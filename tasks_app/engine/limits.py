"""Global rate limits and per-key concurrency, decided inside the take script on Redis's clock.

``@task(rate_limit="10/s", rate_limit_key="host:{feed_host}")`` and ``@task(concurrency=1,
concurrency_key="feed:{feed_id}")`` give a task a ``Limits``; each of its jobs carries its limiter keys,
made from its arguments, as ``meta["limits"]``: ``"<rate key>,<count>,<period ms>;<lease key>,<n>"``
(either half empty). ``storage.serialize`` writes that entry first in ``meta``, right after the job's
header, where the scripts read it without decoding the job (``lua/codec.py``'s ``limits_of``).

What the take script does with it (``lua/limits.py``), in the same compare-and-set that marks the job
ACTIVE:

- **rate**: a sliding window, exact: at most ``count`` starts in any ``period`` (a sorted set of start
  times, ``saq:limit:rate:<key>``, shared by every queue, worker and host);
- **concurrency**: at most ``n`` running at once (a hash of the jobs holding a lease,
  ``saq:limit:lease:<key>``). The lease is given back in the same script that ends or re-queues the job
  (``lua/codec.py``'s ``release_lease``): its outcome, a retry, a clean stop, an abort, and the sweep of
  a dead worker's job. A holder that is no longer running (e.g. its record expired) is dropped when a
  job finds the limit reached.

A job over its limit stays QUEUED (attempts unchanged, no error): it is parked in
``<queued>:waiting:<r|c>:<key>``, and ``<queued>:limited`` scores each such list by the time (ms, Redis's
clock) its first job may be tried again: when the window frees a start, or, for a lease, at once when a
job of this queue gives one back (else within ``LEASE_RECHECK_MS``). Every take serves due parked jobs
first (they were first in line); a worker with nothing to take sleeps until the earliest of those times
(``attempts.take``), not for a fixed tick.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from saq.job import Job

from ..exceptions import LimitError
from .clock import job_time

META = "limits"
PERIODS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000}
MAX_COUNT = 100_000  # starts per period: the window holds one entry per start
MAX_CONCURRENCY = 10_000
LEASE_RECHECK_MS = 1000  # keep in step with lua/limits.py
RATE = re.compile(r"\s*(\d+)\s*/\s*(s|m|h)\s*")
# The literal text of a key template, and every value put in one (percent-encoded): what the scripts
# can read without unescaping (no quote, backslash, comma or semicolon).
SAFE = "-._~:/@+=!*()"
LITERAL = re.compile(r"[A-Za-z0-9\-._~:/@+=!*()]*")


@dataclass(frozen=True)
class Limits:
    """A task's limits: ``rate`` ``(count, period ms)`` or None, ``rate_key`` its key template; ``concurrency``
    (jobs at once) or None, ``concurrency_key`` its template. A template names the task's arguments as
    ``{name}``; its default is ``"task:<task name>"``."""

    rate: tuple[int, int] | None
    rate_key: str
    concurrency: int | None
    concurrency_key: str
    defaults: dict[str, Any]  # the task's argument defaults: a call that leaves one out keys by it

    def meta(self, kwargs: dict[str, Any]) -> str:
        """The ``meta["limits"]`` of a job with these arguments (``kwargs`` already checked to bind)."""
        kwargs = {**self.defaults, **kwargs}
        rate = f"{_fill(self.rate_key, kwargs)},{self.rate[0]},{self.rate[1]}" if self.rate else ""
        lease = f"{_fill(self.concurrency_key, kwargs)},{self.concurrency}" if self.concurrency else ""
        return f"{rate};{lease}"


def parse_rate(value: Any) -> tuple[int, int]:
    """``"10/s"``, ``"600/m"``, ``"1000/h"`` as ``(count, period ms)``; raises ``LimitError``."""
    match = RATE.fullmatch(value) if isinstance(value, str) else None
    if match is None or not 1 <= int(match[1]) <= MAX_COUNT:
        raise LimitError(
            f"rate_limit={value!r} is not a rate: write starts per second, minute or hour as a string, "
            f'e.g. rate_limit="10/s", "600/m" or "1000/h" (1 to {MAX_COUNT} per period).'
        )
    return int(match[1]), PERIODS_MS[match[2]]


def define(
    task_name: str,
    parameters: list[Any],
    *,
    rate_limit: Any = None,
    rate_limit_key: Any = None,
    concurrency: Any = None,
    concurrency_key: Any = None,
) -> Limits | None:
    """The ``Limits`` of ``@task(...)``'s options, or None if none is given; raises ``LimitError`` naming
    the problem and the fix. ``parameters``: the task's parameters after ``ctx`` (``inspect.Parameter``)."""
    if rate_limit is None and concurrency is None:
        for name, given in (("rate_limit_key", rate_limit_key), ("concurrency_key", concurrency_key)):
            if given is not None:
                raise LimitError(f"@task {task_name}: {name}= needs {name.removesuffix('_key')}= (the limit it keys).")
        return None
    if rate_limit is None and rate_limit_key is not None:
        raise LimitError(f'@task {task_name}: rate_limit_key= needs rate_limit= (e.g. rate_limit="10/s").')
    if concurrency is None and concurrency_key is not None:
        raise LimitError(f"@task {task_name}: concurrency_key= needs concurrency= (e.g. concurrency=1).")
    rate = parse_rate(rate_limit) if rate_limit is not None else None
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        raise LimitError(
            f"@task {task_name}: concurrency={concurrency!r} must be a whole number of jobs at once, "
            f"from 1 to {MAX_CONCURRENCY}."
        )
    default = f"task:{task_name}"
    return Limits(
        rate=rate,
        rate_key=_template(task_name, "rate_limit_key", rate_limit_key or default, parameters),
        concurrency=concurrency,
        concurrency_key=_template(task_name, "concurrency_key", concurrency_key or default, parameters),
        defaults={p.name: p.default for p in parameters if p.default is not p.empty},
    )


def _template(task_name: str, option: str, template: Any, parameters: list[Any]) -> str:
    if not isinstance(template, str) or not template:
        raise LimitError(f'@task {task_name}: {option}={template!r} must be a string such as "host:{{feed_host}}".')
    names = {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    any_name = any(p.kind == p.VAR_KEYWORD for p in parameters)
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise LimitError(f"@task {task_name}: {option}={template!r} is not a key template ({exc}).") from None
    for literal, field, spec, conversion in pieces:
        if not LITERAL.fullmatch(literal):
            raise LimitError(
                f"@task {task_name}: {option}={template!r}: its text may hold letters, digits and {SAFE} only."
            )
        if field is None:
            continue
        if spec or conversion or not field.isidentifier():
            raise LimitError(
                f"@task {task_name}: {option}={template!r}: name arguments plainly, as {{feed_id}} "
                "(no attributes, indexes, conversions or formats)."
            )
        if field not in names and not any_name:
            raise LimitError(
                f"@task {task_name}: {option}={template!r} names {field!r}, which is not an argument of the task; "
                f"its arguments: {', '.join(sorted(names)) or 'none'}."
            )
    return template


def _fill(template: str, kwargs: dict[str, Any]) -> str:
    # Only a name a **kwargs task was not given is missing: it keys as the empty string.
    values = {name: quote(str(value), safe=SAFE) for name, value in kwargs.items()}
    return string.Formatter().vformat(template, (), _Missing(values))


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return ""


def mark(job: Job, limits: Limits) -> Job:
    """Give ``job`` its limiter keys (``meta["limits"]``), from its arguments."""
    job.meta[META] = limits.meta(job.kwargs or {})
    return job


def parsed(entry: str) -> dict[str, Any]:
    """A ``meta["limits"]`` entry as ``{"rate": (key, count, period ms) or None, "lease": (key, n) or None}``."""
    rate, _, lease = entry.partition(";")
    out: dict[str, Any] = {"rate": None, "lease": None}
    if rate:
        key, count, period = rate.rsplit(",", 2)
        out["rate"] = (key, int(count), int(period))
    if lease:
        key, most = lease.rsplit(",", 1)
        out["lease"] = (key, int(most))
    return out


@dataclass(frozen=True)
class LimiterState:
    """One limiter as the dashboard shows it: ``kind`` "rate" or "concurrency"; ``limit`` as written
    ("10/s", "2 at once"); ``in_use``: starts within the current window, or leases held; ``waiting``: jobs
    of this queue parked for it; ``used_at``: its last use (epoch ms, Redis's clock)."""

    kind: str
    key: str
    limit: str
    in_use: int
    waiting: int
    used_at: int

    @property
    def used(self) -> datetime | None:
        """``used_at`` as an aware datetime."""
        return job_time(self.used_at)


async def state(queue: Any) -> list[LimiterState]:
    """The limiters ``queue``'s jobs used within the last hour, most recent first (at most 100)."""
    rows = await queue._script("limiters", [f"{queue.queued_key}:limiters", queue.queued_key], [])
    out = []
    for kind, key, limit, period, used, waiting, used_at in rows:
        kind, key = _text(kind), _text(key)
        if kind == "rate":
            unit = {ms: unit for unit, ms in PERIODS_MS.items()}.get(int(period), f"{int(period)}ms")
            text = f"{int(limit)}/{unit}"
        else:
            text = f"{int(limit)} at once"
        out.append(LimiterState(kind, key, text, int(used), int(waiting), int(float(used_at))))
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
