"""The task registry: ``@task``, and the functions listed in ``SAQ["TASK_FUNCTIONS"]``.

Task name -> ``TaskSpec`` (function, default queue, job options). A name registered by
two different functions is reported by the tasks_app.E005 system check.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

from django.utils.module_loading import import_string
from saq.job import Job

from . import conf
from .argument_types import ArgumentTypes, argument_types, to_json
from .engine import debounce as debouncing
from .exceptions import TaskArgumentError, TaskNotFound

# Keyword names SAQ reads as job fields; a task parameter of that name could never be passed.
RESERVED_KWARGS = frozenset(Job.__dataclass_fields__) | {"queue", "delay", "at", "debounce", "debounce_max"}

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    func: Callable[..., Any]
    queue: str = conf.DEFAULT_QUEUE
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    debounce: list[float] | None = None  # [seconds, max seconds] for calls with a key: engine/debounce.py

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    @property
    def path(self) -> str:
        return f"{self.func.__module__}.{self.func.__qualname__}"

    @property
    def parameters(self) -> list[inspect.Parameter]:
        """The parameters a caller passes: all but the leading ``ctx``."""
        return list(inspect.signature(self.func).parameters.values())[1:]

    def reserved_parameters(self) -> list[str]:
        return [p.name for p in self.parameters if p.name in RESERVED_KWARGS]

    def job_options(self) -> dict[str, Any]:
        """Settings defaults overlaid with this task's own options."""
        return {**conf.default_job_options(), **self.options}

    @property
    def argument_types(self) -> ArgumentTypes:
        return argument_types(self.func, 1)

    def validate_kwargs(self, kwargs: dict[str, Any]) -> str:
        """``kwargs`` as JSON, once they bind to the task's signature, fit its annotations and can be
        stored (``argument_types.to_json``); raises ``TaskArgumentError`` naming the problem."""
        reserved = sorted(set(kwargs) & RESERVED_KWARGS)
        if reserved:
            raise TaskArgumentError(
                f"{', '.join(reserved)} {'is a' if len(reserved) == 1 else 'are'} SAQ job "
                f"field{'s' if len(reserved) > 1 else ''}, not {self.name}() argument"
                f"{'s' if len(reserved) > 1 else ''}; pass job options as options, not task arguments."
            )
        try:
            inspect.signature(self.func).bind(None, **kwargs)
        except TypeError as exc:
            expected = ", ".join(str(p) for p in self.parameters) or "no arguments"
            raise TaskArgumentError(f"{self.name}(): {exc}. It takes: {expected}.") from None
        text = to_json(self.name, kwargs)
        self.argument_types.check(self.name, kwargs, text)
        return text


class Registry:
    def __init__(self) -> None:
        self._tasks: dict[str, TaskSpec] = {}
        self.collisions: dict[str, list[TaskSpec]] = {}

    def register(self, spec: TaskSpec) -> TaskSpec:
        existing = self._tasks.get(spec.name)
        if existing is not None and existing.path != spec.path:
            self.collisions.setdefault(spec.name, [existing]).append(spec)
            return spec
        self._tasks[spec.name] = spec
        return spec

    def unregister(self, name: str) -> None:
        self._tasks.pop(name, None)
        self.collisions.pop(name, None)

    def get(self, name_or_func: str | Callable[..., Any]) -> TaskSpec:
        """The spec of a task, by name or by its function; raises ``TaskNotFound``."""
        name = name_or_func if isinstance(name_or_func, str) else task_name_of(name_or_func)
        try:
            return self._tasks[name]
        except KeyError:
            raise TaskNotFound(name, list(self._tasks)) from None

    def all(self) -> list[TaskSpec]:
        return sorted(self._tasks.values(), key=lambda spec: spec.name)

    def __contains__(self, name: str) -> bool:
        return name in self._tasks


def task_name_of(func: Callable[..., Any]) -> str:
    spec = getattr(func, "saq_task", None)
    return spec.name if spec is not None else func.__name__


registry = Registry()


@overload
def task[F: Callable[..., Any]](func: F, /) -> F: ...
@overload
def task(
    *,
    name: str | None = None,
    queue: str = conf.DEFAULT_QUEUE,
    timeout: int | None = None,
    retries: int | None = None,
    retry_delay: float | None = None,
    retry_backoff: bool | float | None = None,
    ttl: int | None = None,
    heartbeat: int | None = None,
    debounce: float | None = None,
    debounce_max: float | None = None,
) -> Callable[[F], F]: ...


def task(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    queue: str = conf.DEFAULT_QUEUE,
    debounce: float | None = None,
    debounce_max: float | None = None,
    **options: Any,
):
    """Register ``func(ctx, ...)`` as a task; use bare (``@task``) or with job options.

    ``async def`` tasks run on the worker's event loop; plain ``def`` tasks run in a thread.
    Options: ``timeout`` and ``heartbeat`` (seconds), ``retries`` (after the first attempt),
    ``retry_delay`` (seconds), ``retry_backoff`` (True, or a cap in seconds), ``ttl`` (seconds
    a finished job is kept), ``debounce``/``debounce_max`` (seconds: the default for calls that give a
    ``key``, see ``engine/debounce.py``). The function is returned unchanged, so it can still be called
    directly. Raises ``TypeError`` for an unknown option or a bad value (``conf.job_option_problems``).
    """
    unknown = set(options) - set(conf.JOB_OPTIONS)
    if unknown:
        raise TypeError(f"@task got unknown option(s) {sorted(unknown)}; allowed: {list(conf.JOB_OPTIONS)}.")
    job_options = {k: v for k, v in options.items() if v is not None}
    problems = conf.job_option_problems(job_options)
    problems += debouncing.problems(debounce, debounce_max)
    if problems:
        raise TypeError(f"@task: {' '.join(problems)}")
    window = debouncing.window(debounce, debounce_max) if debounce is not None else None

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        spec = registry.register(
            TaskSpec(name=name or f.__name__, func=f, queue=queue, options=job_options, debounce=window)
        )
        f.saq_task = spec  # type: ignore[attr-defined]
        return f

    return decorate(func) if func is not None else decorate


def import_task_function(path: str) -> Callable[..., Any]:
    """Import one ``SAQ["TASK_FUNCTIONS"]`` entry; raises ImportError, or TypeError if not callable."""
    func = import_string(path)
    if not callable(func):
        raise TypeError("it is not callable")
    return func


def register_task_functions() -> None:
    """Register the plain functions listed by dotted path in ``SAQ["TASK_FUNCTIONS"]``."""
    for path in conf.task_functions():
        try:
            func = import_task_function(path)
        except (ImportError, TypeError):
            continue  # reported by the tasks_app.E002 system check
        registry.register(getattr(func, "saq_task", None) or TaskSpec(name=func.__name__, func=func))
