"""SAQ background tasks for Django.

Public API::

    from tasks_app import task, enqueue, enqueue_sync, enqueue_on_commit

``tasks_app.backends.SAQBackend`` is the ``django.tasks`` backend; ``tasks_app.testing``
helps test code that enqueues. Errors are in ``tasks_app.exceptions``.
"""

from .enqueueing.api import enqueue, enqueue_on_commit, enqueue_sync
from .registry import task

__all__ = ["enqueue", "enqueue_on_commit", "enqueue_sync", "task"]
