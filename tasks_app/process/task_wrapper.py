"""The wrapper every task runs in: database connection hygiene, in the thread that used the connection."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections

from ..registry import TaskSpec


class _ORMThread:
    """Connection hygiene for the one thread where the async ORM runs.

    ``sync_to_async(thread_sensitive=True)`` sends every async ORM call to a single
    thread, so its connections must be cleaned there. A thread hop costs more than
    a no-op job, so two shortcuts keep it cheap without weakening the guarantee:

    - if no query ran in that thread since the last cleanup, there is nothing new
      to clean (that cleanup already re-armed Django's health check);
    - jobs that ask while a cleanup is queued but not yet started share it: it
      runs after everything they did, so it covers them all.
    """

    def __init__(self) -> None:
        self._wrappers: list[Any] | None = None
        self._queries = 0  # queries run in the ORM thread, counted there
        self._queries_at_last_clean = 0
        self._pending: asyncio.Future | None = None
        self._clean = sync_to_async(self._clean_in_thread, thread_sensitive=True)

    def _count_query(self, execute, sql, params, many, context):
        self._queries += 1
        return execute(sql, params, many, context)

    def _clean_in_thread(self) -> None:
        self._pending = None  # from here on, a new request needs a new cleanup
        if self._wrappers is None:
            self._wrappers = [connections[alias] for alias in connections]
            for wrapper in self._wrappers:
                wrapper.execute_wrappers.append(self._count_query)
        self._queries_at_last_clean = self._queries
        close_old_connections()

    def _needs_cleaning(self) -> bool:
        if self._wrappers is None:
            return True
        return self._queries != self._queries_at_last_clean and any(w.connection is not None for w in self._wrappers)

    async def clean(self) -> None:
        if not self._needs_cleaning():
            return
        queued = self._pending
        if queued is None:
            queued = self._pending = asyncio.ensure_future(self._clean())
        # Shielded: one job's cancellation must not cancel the cleanup others wait for.
        await asyncio.shield(queued)


orm_thread = _ORMThread()


def _call_sync(func: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()


async def call_in_thread(executor: Executor | None, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run sync ``func`` on ``executor`` with the caller's context variables; the thread that runs
    it opens and cleans its own database connection, before and after."""
    call = functools.partial(contextvars.copy_context().run, _call_sync, func, args, kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, call)


def wrap(spec: TaskSpec, executor: Executor) -> Callable[..., Any]:
    """The coroutine the worker runs for ``spec``'s jobs: ``async`` tasks on the loop with the ORM
    thread cleaned around them, sync tasks on ``executor``."""
    func = spec.func

    if spec.is_async:

        async def run(ctx: dict, **kwargs: Any) -> Any:
            await orm_thread.clean()
            try:
                return await func(ctx, **kwargs)
            finally:
                await orm_thread.clean()

    else:

        async def run(ctx: dict, **kwargs: Any) -> Any:
            return await call_in_thread(executor, func, ctx, **kwargs)

    run.__qualname__ = run.__name__ = spec.name
    return run
