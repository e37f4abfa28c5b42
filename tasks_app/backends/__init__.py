"""The ``django.tasks`` backend: Django's Tasks framework, run by tasks_app's SAQ workers.

    TASKS = {"default": {"BACKEND": "tasks_app.backends.SAQBackend", "QUEUES": ["default"]}}

``saq.py`` is the backend (enqueue, results); ``runner.py`` is the task that runs a Task
in the worker and turns a SAQ job back into a ``TaskResult``.
"""

from .saq import SAQBackend

__all__ = ["SAQBackend"]
