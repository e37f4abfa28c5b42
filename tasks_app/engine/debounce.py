"""Debounce: a burst of enqueues of one job key runs once, after the last, with the last arguments.

A job is debounced by ``mark``: its ``meta["debounce"]`` holds ``[seconds, max seconds]``, so the window
travels with the job wherever it goes before Redis (``enqueue_on_commit``'s outbox row keeps
``job.to_dict()``), and the enqueue script reads it as two extra ARGV (``args``). What the script does
with them (one compare-and-set on Redis's clock) is in ``engine/lua/debounce.py``:

- no pending job of the key: queued, due ``seconds`` from now;
- a QUEUED job not yet taken: its arguments replaced by the new call's, due again ``seconds`` from now,
  but never later than ``max seconds`` after the burst's first enqueue (its ``queued`` time);
- a job already taken (ACTIVE, or being aborted): left alone; the new call waits as its successor
  (a later call replaces it) and is queued, debounced the same way, the moment the job ends. So a save
  made while the job runs is never lost: it runs once more, after.
"""

from __future__ import annotations

import math
from typing import Any

from saq.job import Job

META = "debounce"
# ``debounce_max`` when none is given: this many windows. A burst that never pauses still runs.
DEFAULT_MAX_WINDOWS = 10
# The longest window or ceiling: a day. A debounce is for bursts of edits, not for scheduling.
MAX_SECONDS = 24 * 3600


def problems(seconds: Any, maximum: Any) -> list[str]:
    """What is wrong with ``debounce=seconds, debounce_max=maximum``, one message each (empty if fine).
    ``seconds`` is a number of seconds above 0 (or None: no debounce); ``maximum`` None or a number
    of seconds at least ``seconds``; both at most ``MAX_SECONDS``."""
    found = []
    if seconds is not None and not (_number(seconds) and 0 < seconds <= MAX_SECONDS):
        found.append(f"debounce={seconds!r} must be a number of seconds above 0 and at most {MAX_SECONDS}.")
    if maximum is not None:
        if seconds is None:
            found.append(f"debounce_max={maximum!r} needs debounce= (the window it caps).")
        elif not (_number(maximum) and 0 < maximum <= MAX_SECONDS):
            found.append(f"debounce_max={maximum!r} must be a number of seconds above 0 and at most {MAX_SECONDS}.")
        elif _number(seconds) and maximum < seconds:
            found.append(f"debounce_max={maximum!r} must be at least debounce={seconds!r}.")
    return found


def window(seconds: float, maximum: float | None = None) -> list[float]:
    """``[seconds, max seconds]`` for valid values (``problems`` says none): ``maximum`` defaults to
    ``DEFAULT_MAX_WINDOWS`` windows, capped at ``MAX_SECONDS``."""
    if maximum is None:
        maximum = min(seconds * DEFAULT_MAX_WINDOWS, MAX_SECONDS)
    return [float(seconds), float(maximum)]


def mark(job: Job, seconds: float, maximum: float | None = None) -> Job:
    """Debounce ``job`` (a job with its own ``key``): see the module docstring."""
    job.meta[META] = window(seconds, maximum)
    return job


def of(job: Job) -> list[float] | None:
    """``[seconds, max seconds]`` of a debounced job, else None."""
    return job.meta.get(META) if job.meta else None


def args(job: Job) -> list[float]:
    """The enqueue script's extra ARGV for ``job``: ``[seconds, max]``, or none for a plain job."""
    if not job.meta:
        return []
    found = job.meta.get(META)
    return [found[0], found[1]] if found else []


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
