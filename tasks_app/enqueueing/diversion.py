"""Where enqueued jobs go instead of Redis: a test's capture, or straight to running.

- ``tasks_app.testing.capture_jobs()`` records the jobs (nothing reaches Redis);
- ``SAQ["MODE"] = "immediate"`` runs each job at once, in the enqueuing process (``inline.py``).

Every way of enqueueing (``enqueue``, ``enqueue_sync``, the bulk calls, and the on-commit delivery of
``enqueue_on_commit``) asks ``target`` first. In production ``target`` is None once the first enqueue
has read the settings, so this feature costs the enqueue path one attribute check and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from django.core.signals import setting_changed

from .. import conf

if TYPE_CHECKING:
    from saq.job import Job

    from .building import BuiltJob


class Target(Protocol):
    """Takes built jobs instead of Redis; returns, per job and in order, the job the caller gets back
    (or None, for "not diverted: send them to Redis after all")."""

    def take(self, built: Sequence[BuiltJob]) -> list[Job] | None:
        """From sync code, in a thread with no running event loop."""

    async def atake(self, built: Sequence[BuiltJob]) -> list[Job] | None:
        """From async code, on the running loop."""


class _FromSettings:
    """The target until the settings have been read: reads them once, then steps aside."""

    def take(self, built: Sequence[BuiltJob]) -> list[Job] | None:
        chosen = configure()
        return None if chosen is None else chosen.take(built)

    async def atake(self, built: Sequence[BuiltJob]) -> list[Job] | None:
        chosen = configure()
        return None if chosen is None else await chosen.atake(built)


_FROM_SETTINGS = _FromSettings()

# Read on every enqueue: None means "to Redis".
target: Target | None = _FROM_SETTINGS
# Active captures, innermost last; while there is one, it takes every job.
_captures: list[Target] = []


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


def _settings_changed(*, setting: str, **kwargs) -> None:
    global target
    if setting == "SAQ":
        target = _captures[-1] if _captures else _FROM_SETTINGS


setting_changed.connect(_settings_changed, dispatch_uid="tasks_app.enqueueing.diversion")
