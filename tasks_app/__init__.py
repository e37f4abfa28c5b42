"""SAQ background tasks for Django.

Public API::

    from tasks_app import task, enqueue, enqueue_sync, enqueue_on_commit
"""

from .decorators import task
from .enqueue import enqueue, enqueue_on_commit, enqueue_sync

__all__ = ["enqueue", "enqueue_on_commit", "enqueue_sync", "task"]
