"""tasks_app's own task: the runner behind the django.tasks backend (``tasks_app.backends.SAQBackend``).

Autodiscovery imports this module like any app's tasks.py; it registers the runner on every queue.
"""

from __future__ import annotations

from typing import Any

from . import django_tasks


async def run_django_task(
    ctx: dict[str, Any], task_path: str, task_args: list[Any], task_kwargs: dict[str, Any], backend_alias: str
) -> Any:
    """Run one attempt of the django.tasks Task at ``task_path``."""
    return await django_tasks.run(ctx, task_path, task_args, task_kwargs, backend_alias)


django_tasks.register_runners(run_django_task)
