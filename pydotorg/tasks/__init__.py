"""The older SAQ document's ``pydotorg.tasks`` (``../shared/seed/saq-background-tasks.md``), kept so that its
two entry points say where things are now (README, "From the SAQ document and SAQ's own CLI to here").

Here each app's ``tasks.py`` holds its own tasks and ``tasks_app`` enqueues them. This package only answers:

- ``uv run saq pydotorg.tasks.worker.settings_dict ...``: runs ``manage.py runworker`` (``worker.py``);
- ``from pydotorg.tasks import queue``: an ``ImportError`` naming ``tasks_app``'s calls.
"""

from typing import NoReturn


def __getattr__(name: str) -> NoReturn:
    if name == "queue":
        raise ImportError(
            "pydotorg.tasks.queue is the older SAQ document's queue: here, enqueue with tasks_app's calls, "
            "`from tasks_app import aenqueue, enqueue, enqueue_on_commit` "
            "(`await aenqueue('refresh_all_feeds')`; `enqueue(...)` from sync code)."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
