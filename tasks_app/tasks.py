"""tasks_app's own task: the runner behind the django.tasks backend (``tasks_app.backends.SAQBackend``).

Autodiscovery imports this module like any app's tasks.py. Workers run every
registered task on every queue, so one runner serves all of them.
"""

from __future__ import annotations

from typing import Any

from . import django_tasks
from .decorators import task


@task(name=django_tasks.RUNNER)
async def run_django_task(
    ctx: dict[str, Any], task_path: str, task_args: list[Any], task_kwargs: dict[str, Any], backend_alias: str
) -> Any:
    """Run one attempt of the django.tasks Task at ``task_path``."""
    return await django_tasks.run(ctx, task_path, task_args, task_kwargs, backend_alias)
