"""Where enqueued jobs go instead of Redis: a test's capture, or straight to running.

- ``tasks_app.testing.capture_jobs()`` records the jobs (nothing reaches Redis);
- ``SAQ["MODE"] = "immediate"`` runs each job at once, in the enqueuing process (``inline.py``).

Every way of enqueueing (``enqueue``, ``aenqueue``, the bulk calls, and the on-commit delivery of
``enqueue_on_commit``) builds its jobs, then asks ``current()``: a target takes them, None sends them
to Redis. In production ``target`` is None once the first enqueue has read the settings, so this
feature costs the enqueue path one call and an identity check, and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .. import conf

if TYPE_CHECKING:
    from saq.job import Job

    from .building import BuiltJob


class Target(Protocol):
    """Takes built jobs instead of Redis; returns, per job and in order, the job the caller gets back."""

    def take(self, built: Sequence[BuiltJob]) -> list[Job]:
        """From sync code, in a thread with no running event loop."""

    async def atake(self, built: Sequence[BuiltJob]) -> list[Job]:
        """From async code, on the running loop."""


# ``target`` before the settings have been read (first enqueue, or after they changed).
_UNREAD: Any = object()

# None means "to Redis"; read through ``current()``.
target: Target | None = _UNREAD
# Active captures, innermost last; while there is one, it takes every job.
_captures: list[Target] = []


def current() -> Target | None:
    """Where jobs go now: a target, or None for Redis. Reads the settings the first time."""
    return configure() if target is _UNREAD else target


def innermost() -> Target | None:
    """The innermost active capture, if any."""
    return _captures[-1] if _captures else None


def configure() -> Target | None:
    """Set ``target`` from the active captures and ``SAQ["MODE"]``, and return it."""
    global target
    if _captures:
        target = _captures[-1]
    elif conf.mode() == conf.IMMEDIATE:
        from .inline import immediate

        target = immediate
    else:
        target = None
    return target


def push(capture: Target) -> None:
    """Divert every job to ``capture`` until ``pop``."""
    _captures.append(capture)
    configure()


def pop(capture: Target) -> None:
    _captures.remove(capture)
    configure()


def settings_changed() -> None:
    """``SAQ`` changed (``apps.py``'s receiver calls this): the innermost capture still takes every job;
    without one, the next enqueue reads the settings again."""
    global target
    target = _captures[-1] if _captures else _UNREAD
