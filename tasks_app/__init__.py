"""SAQ background tasks for Django.

Public API::

    from tasks_app import task, enqueue, enqueue_sync, enqueue_on_commit
    from tasks_app import aenqueue_many, enqueue_many, enqueue_many_on_commit  # in bulk

``tasks_app.backends.SAQBackend`` is the ``django.tasks`` backend; ``tasks_app.testing``
helps test code that enqueues. Errors are in ``tasks_app.exceptions``.
"""

from .enqueueing.api import (
    aenqueue_many,
    enqueue,
    enqueue_many,
    enqueue_many_on_commit,
    enqueue_on_commit,
    enqueue_sync,
)
from .registry import task

__all__ = [
    "aenqueue_many",
    "enqueue",
    "enqueue_many",
    "enqueue_many_on_commit",
    "enqueue_on_commit",
    "enqueue_sync",
    "task",
]
