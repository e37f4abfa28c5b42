"""The task registry: ``@task``, and the functions listed in ``SAQ["TASK_FUNCTIONS"]``.

Task name -> ``TaskSpec`` (function, default queue, job options). A name registered by
two different functions is reported by the tasks_app.E005 system check.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

from django.utils.module_loading import import_string
from saq.job import Job

from . import conf
from .argument_types import ArgumentTypes, argument_types, to_json
from .engine import debounce as debouncing
from .engine import limits as limiting
from .exceptions import TaskArgumentError, TaskNotFound, did_you_mean

# Keyword names SAQ reads as job fields; a task parameter of that name could never be passed.
RESERVED_KWARGS = frozenset(Job.__dataclass_fields__) | {"queue", "delay", "at", "debounce", "debounce_max"}

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    func: Callable[..., Any]
    queue: str = conf.DEFAULT_QUEUE
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Called once its job has failed with no attempts left (``tasks_app.failures``): a callable or a dotted path.
    on_final_failure: Callable[..., Any] | str | None = None
    debounce: list[float] | None = None  # [seconds, max seconds] for calls with a key: engine/debounce.py
    limits: limiting.Limits | None = None  # rate limit and concurrency: engine/limits.py

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    @property
    def path(self) -> str:
        return f"{self.func.__module__}.{self.func.__qualname__}"

    @functools.cached_property
    def signature(self) -> inspect.Signature:
        """The function's signature, read once (``inspect.signature`` costs more than a no-op enqueue's write)."""
        return inspect.signature(self.func)

    @property
    def parameters(self) -> list[inspect.Parameter]:
        """The parameters a caller passes: all but the leading ``ctx``."""
        return list(self.signature.parameters.values())[1:]

    @functools.cached_property
    def _simple_binding(self) -> tuple[str, frozenset[str] | None, frozenset[str]] | None:
        """``(ctx's name, names a caller may pass (None: any, there is a **kwargs), names it must pass)``
        for a signature whose keyword binding those settle; None for one with positional-only
        parameters after ``ctx`` (or no ``ctx``), which ``Signature.bind`` alone decides."""
        parameters = list(self.signature.parameters.values())
        if not parameters or parameters[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            return None
        allowed: set[str] | None = set()
        required = set()
        for parameter in parameters[1:]:
            if parameter.kind == parameter.POSITIONAL_ONLY:
                return None
            if parameter.kind == parameter.VAR_KEYWORD:
                allowed = None
            elif parameter.kind != parameter.VAR_POSITIONAL:
                if allowed is not None:
                    allowed.add(parameter.name)
                if parameter.default is parameter.empty:
                    required.add(parameter.name)
        return parameters[0].name, None if allowed is None else frozenset(allowed), frozenset(required)

    def _binds(self, kwargs: dict[str, Any]) -> bool:
        """True when ``kwargs`` certainly bind after ``ctx`` (``_simple_binding``); False: ask ``bind``."""
        binding = self._simple_binding
        if binding is None:
            return False
        first, allowed, required = binding
        return first not in kwargs and (allowed is None or kwargs.keys() <= allowed) and required <= kwargs.keys()

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
        if not RESERVED_KWARGS.isdisjoint(kwargs):
            reserved = sorted(set(kwargs) & RESERVED_KWARGS)
            raise TaskArgumentError(
                f"{', '.join(reserved)} {'is a' if len(reserved) == 1 else 'are'} SAQ job "
                f"field{'s' if len(reserved) > 1 else ''}, not {self.name}() argument"
                f"{'s' if len(reserved) > 1 else ''}; pass job options as options, not task arguments."
            )
        try:
            if not self._binds(kwargs):
                self.signature.bind(None, **kwargs)
        except TypeError as exc:
            expected = ", ".join(str(p) for p in self.parameters) or "no arguments"
            raise TaskArgumentError(
                f"{self.name}(): {self._unexpected(kwargs) or exc}. It takes: {expected}."
            ) from None
        text = to_json(self.name, kwargs)
        self.argument_types.check(self.name, kwargs, text)
        return text

    def _unexpected(self, kwargs: dict[str, Any]) -> str | None:
        # Named before a missing one (Python's bind names that first): subscriber= for subscriber_id= is a typo.
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in self.parameters):
            return None
        names = [p.name for p in self.parameters]
        unknown = [name for name in kwargs if name not in names]
        if not unknown:
            return None
        said = ", ".join(f"{name!r}{did_you_mean(name, names, cutoff=0.75)}" for name in unknown)
        return f"unexpected keyword argument {said}"


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
        if isinstance(name_or_func, str):
            name = name_or_func
        elif callable(name_or_func):
            name = task_name_of(name_or_func)
        else:
            raise TaskArgumentError(
                f"A task is given by its name (a str) or its @task function, not {type(name_or_func).__name__} "
                f"{name_or_func!r:.80}."
            )
        try:
            return self._tasks[name]
        except KeyError:
            raise TaskNotFound(name, list(self._tasks)) from None

    def all(self) -> list[TaskSpec]:
        return sorted(self._tasks.values(), key=lambda spec: spec.name)

    def __contains__(self, name: str) -> bool:
        return name in self._tasks


MAX_NAME_LENGTH = 200  # keys derived from it (a cron entry's ``cron:<name>``) stay within a job key's 255


def _check_function(name: str, f: Callable[..., Any], where: str = "@task") -> None:
    """Raise ``TypeError`` for a task no worker could run: a name over ``MAX_NAME_LENGTH`` characters (its
    cron runs' key would be refused at every tick), a generator (its result would be the generator,
    which cannot be stored), or a function without ``ctx`` first. ``where`` starts the message."""
    if len(name) > MAX_NAME_LENGTH:
        raise TypeError(
            f"{where}: the name {name!r:.60}... is {len(name)} characters; at most {MAX_NAME_LENGTH}: "
            "give a shorter one with @task(name='app_label.action')."
        )
    if inspect.isasyncgenfunction(f) or inspect.isgeneratorfunction(f):
        raise TypeError(f"{where}: {name}() is a generator function; a task returns its result (return, not yield).")
    try:
        first = next(iter(inspect.signature(f).parameters.values()), None)
    except (TypeError, ValueError):  # no signature to read (some builtins): the worker will say
        return
    if first is None or first.kind not in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD, first.VAR_POSITIONAL):
        raise TypeError(f"{where}: {name}() must take the job's context first: def {name}(ctx, ...).")


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
    priority: int | None = None,
    on_final_failure: Callable[..., Any] | str | None = None,
    debounce: float | None = None,
    debounce_max: float | None = None,
    rate_limit: str | None = None,
    rate_limit_key: str | None = None,
    concurrency: int | None = None,
    concurrency_key: str | None = None,
) -> Callable[[F], F]: ...


def task(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    queue: str = conf.DEFAULT_QUEUE,
    on_final_failure: Callable[..., Any] | str | None = None,
    debounce: float | None = None,
    debounce_max: float | None = None,
    rate_limit: str | None = None,
    rate_limit_key: str | None = None,
    concurrency: int | None = None,
    concurrency_key: str | None = None,
    **options: Any,
):
    """Register ``func(ctx, ...)`` as a task; use bare (``@task``) or with job options.

    ``async def`` tasks run on the worker's event loop; plain ``def`` tasks run in a thread.
    Options: ``timeout`` and ``heartbeat`` (seconds), ``retries`` (after the first attempt),
    ``retry_delay`` (seconds), ``retry_backoff`` (True, or a cap in seconds), ``ttl`` (seconds
    a finished job is kept), ``debounce``/``debounce_max`` (seconds: the default for calls that give a
    ``key``, see ``engine/debounce.py``). ``on_final_failure``: a callable (or its dotted path) given the
    ``saq.Job`` once it has failed with no attempts left (``tasks_app.failures``). ``priority`` (-100..100,
    default 0): higher runs first within its queue (``engine/priorities.py``). ``rate_limit`` ("10/s",
    "600/m", "1000/h") with ``rate_limit_key``, and ``concurrency`` (jobs at once) with ``concurrency_key``:
    limits shared by every worker, keyed by templates of the task's arguments ("host:{feed_host}"; default
    "task:<name>"), raising ``LimitError`` here for a malformed one (``engine/limits.py``). The function is returned
    unchanged, so it can still be called directly.
    Raises ``TypeError`` for an unknown option, ``TaskArgumentError`` (a ``TypeError``) for a bad value
    (``conf.job_option_problems``).
    """
    if on_final_failure is not None and not (isinstance(on_final_failure, str) or callable(on_final_failure)):
        raise TypeError(f"@task: on_final_failure={on_final_failure!r} must be a callable or a dotted path.")
    unknown = set(options) - set(conf.JOB_OPTIONS)
    if unknown:
        raise TypeError(f"@task got unknown option(s) {sorted(unknown)}; allowed: {list(conf.JOB_OPTIONS)}.")
    job_options = {k: v for k, v in options.items() if v is not None}
    problems = conf.job_option_problems(job_options)
    problems += debouncing.problems(debounce, debounce_max)
    if problems:
        raise TaskArgumentError(f"@task: {' '.join(problems)}")  # a TypeError too, as before
    window = debouncing.window(debounce, debounce_max) if debounce is not None else None

    if name is not None and not (isinstance(name, str) and name):
        raise TypeError(f"@task: name={name!r:.80} must be a non-empty str (default: the function's name).")

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(f):
            raise TypeError(f"@task decorates a function, not {type(f).__name__} {f!r:.80}.")
        task_name = name or f.__name__
        _check_function(task_name, f)
        limits = limiting.define(
            task_name, list(inspect.signature(f).parameters.values())[1:], rate_limit=rate_limit,
            rate_limit_key=rate_limit_key, concurrency=concurrency, concurrency_key=concurrency_key,
        )  # fmt: skip
        spec = registry.register(
            TaskSpec(
                name=task_name,
                func=f,
                queue=queue,
                options=job_options,
                on_final_failure=on_final_failure,
                debounce=window,
                limits=limits,
            )
        )
        f.saq_task = spec  # type: ignore[attr-defined]
        return f

    return decorate(func) if func is not None else decorate


def import_task_function(path: str) -> Callable[..., Any]:
    """Import one ``SAQ["TASK_FUNCTIONS"]`` entry; raises ImportError, or TypeError if it is not callable or
    no worker could run it (``_check_function``: its name's length, a generator, no ``ctx`` first)."""
    func = import_string(path)
    if not callable(func):
        raise TypeError("it is not callable")
    if getattr(func, "saq_task", None) is None:  # a @task was checked when it was declared
        name = getattr(func, "__name__", None)
        if not isinstance(name, str):  # it is registered under its __name__
            raise TypeError("it has no __name__ (a functools.partial, an instance?): give a module-level function")
        _check_function(name, func, where="the function")
    return func


def register_task_functions() -> None:
    """Register the plain functions listed by dotted path in ``SAQ["TASK_FUNCTIONS"]``."""
    for path in conf.task_functions():
        try:
            func = import_task_function(path)
        except (ImportError, TypeError):
            continue  # reported by the tasks_app.E002 system check
        registry.register(getattr(func, "saq_task", None) or TaskSpec(name=func.__name__, func=func))
