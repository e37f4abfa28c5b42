"""``@task``: register a function as a SAQ task under a unique name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from . import conf
from .registry import TaskSpec, registry

F = TypeVar("F", bound=Callable[..., Any])


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
) -> Callable[[F], F]: ...


def task(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    queue: str = conf.DEFAULT_QUEUE,
    **options: Any,
):
    """Register ``func(ctx, ...)`` as a task; use bare (``@task``) or with options.

    ``async def`` tasks run on the worker's event loop; plain ``def`` tasks run in a thread.
    The function is returned unchanged, so it can still be called directly.
    """
    unknown = set(options) - set(conf.JOB_OPTIONS)
    if unknown:
        raise TypeError(f"@task got unknown option(s) {sorted(unknown)}; allowed: {list(conf.JOB_OPTIONS)}.")
    job_options = {k: v for k, v in options.items() if v is not None}

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        spec = registry.register(TaskSpec(name=name or f.__name__, func=f, queue=queue, options=job_options))
        f.saq_task = spec  # type: ignore[attr-defined]
        return f

    return decorate(func) if func is not None else decorate
