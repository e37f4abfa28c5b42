"""The one signal tasks_app sends, so that optional sub-apps (``tasks_app.metrics``) add to a worker
without the worker importing them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal

if TYPE_CHECKING:
    from saq.job import Job

    from .engine.worker import Upkeep

# Sent by ``runworker`` as it builds each worker (sender: the ``Worker`` class), with ``queue`` (its
# ``AtomicRedisQueue``), ``tasks`` (the registered task names) and ``interval`` (the worker_info
# tick, in seconds). A receiver returns a ``WorkerAddOn``, or None.
building_worker = Signal()


@dataclass(frozen=True)
class WorkerAddOn:
    """What a receiver of ``building_worker`` adds to the worker: ``observers`` see each attempt's
    ``(job, outcome, duration in s)`` and must be cheap and never raise; ``upkeep`` chores run on the
    worker's timers; ``shutdown`` hooks (``async (ctx) -> None``) run when it stops."""

    observers: tuple[Callable[[Job, str, float], None], ...] = ()
    upkeep: tuple[Upkeep, ...] = ()
    shutdown: tuple[Callable[[dict[str, Any]], Awaitable[None]], ...] = ()


def worker_add_ons(**arguments: Any) -> list[WorkerAddOn]:
    """Every installed sub-app's ``WorkerAddOn`` for the worker described by ``arguments``."""
    from .engine.worker import Worker

    return [add_on for _, add_on in building_worker.send(Worker, **arguments) if add_on is not None]
