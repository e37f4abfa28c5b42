"""Task name -> function and options. A name registered twice is a system-check error."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable
from typing import Any

from saq.job import Job

from . import conf

# Keyword names SAQ reads as job fields; a task parameter of that name could never be passed.
RESERVED_KWARGS = frozenset(Job.__dataclass_fields__) | {"queue", "delay"}


class TaskNotFound(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(f"Unknown task {name!r}.{hint} Registered tasks: {', '.join(sorted(known)) or 'none'}.")
        self.name = name
        self.close_matches = close


class TaskArgumentError(TypeError):
    """The arguments do not fit the task's signature."""


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    func: Callable[..., Any]
    queue: str = conf.DEFAULT_QUEUE
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

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

    def validate_kwargs(self, kwargs: dict[str, Any]) -> None:
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
