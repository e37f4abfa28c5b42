"""SAQ background tasks for Django.

Public API, with ``django.tasks``' names (sync call, then its async twin)::

    from tasks_app import task, enqueue, aenqueue, enqueue_on_commit
    from tasks_app import enqueue_many, aenqueue_many, enqueue_many_on_commit  # in bulk
    from tasks_app import report_progress, areport_progress  # from inside a running task
    from tasks_app import chain, group, step  # A then B; these N, then C (docs/tasks-app/chains.md)

``enqueue_sync`` is a deprecated alias of ``enqueue`` (it warns; see CHANGELOG.md).
``tasks_app.backends.SAQBackend`` is the ``django.tasks`` backend; ``tasks_app.testing``
helps test code that enqueues. Errors are in ``tasks_app.exceptions``.
"""

from .enqueueing.api import (
    aenqueue,
    aenqueue_many,
    enqueue,
    enqueue_many,
    enqueue_many_on_commit,
    enqueue_on_commit,
    enqueue_sync,
)
from .enqueueing.chains import chain, group, step
from .progress import areport_progress, report_progress
from .registry import task

__all__ = [
    "aenqueue",
    "aenqueue_many",
    "areport_progress",
    "chain",
    "enqueue",
    "enqueue_many",
    "enqueue_many_on_commit",
    "enqueue_on_commit",
    "enqueue_sync",
    "group",
    "report_progress",
    "step",
    "task",
]
