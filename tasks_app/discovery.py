"""Plain functions listed by dotted path in ``SAQ["TASK_FUNCTIONS"]``."""

from __future__ import annotations

from django.utils.module_loading import import_string

from . import conf
from .registry import TaskSpec, registry

# path -> error, for the system check to report instead of failing at import
import_errors: dict[str, str] = {}


def register_task_functions() -> None:
    import_errors.clear()
    for path in conf.task_functions():
        try:
            func = import_string(path)
        except ImportError as exc:
            import_errors[path] = str(exc)
            continue
        if not callable(func):
            import_errors[path] = "it is not callable"
            continue
        spec = getattr(func, "saq_task", None) or TaskSpec(name=func.__name__, func=func)
        registry.register(spec)
