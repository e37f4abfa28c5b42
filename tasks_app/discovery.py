"""Plain functions listed by dotted path in ``SAQ["TASK_FUNCTIONS"]``, the original setup's style."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.module_loading import import_string

from . import conf
from .registry import TaskSpec, registry


def import_task_function(path: str) -> Callable[..., Any]:
    """Import one entry; raises ImportError (or TypeError if it is not callable)."""
    func = import_string(path)
    if not callable(func):
        raise TypeError("it is not callable")
    return func


def register_task_functions() -> None:
    for path in conf.task_functions():
        try:
            func = import_task_function(path)
        except (ImportError, TypeError):
            continue  # reported by the tasks_app.E002 system check
        registry.register(getattr(func, "saq_task", None) or TaskSpec(name=func.__name__, func=func))
