"""The wrapper every task runs in: database connection hygiene, in the thread that used the connection."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections

from ..exceptions import TaskInterrupted
from ..registry import TaskSpec


class _Counted:
    """One thread's connections, and the queries run on them (counted in that thread)."""

    def __init__(self) -> None:
        self.wrappers = [connections[alias] for alias in connections]
        self.queries = 0
        self.queries_at_last_clean = 0
        for wrapper in self.wrappers:
            wrapper.execute_wrappers.append(self._count)

    def _count(self, execute, sql, params, many, context):
        self.queries += 1
        return execute(sql, params, many, context)

    def dirty(self) -> bool:
        return self.queries != self.queries_at_last_clean and any(w.connection is not None for w in self.wrappers)


class _LoopState:
    """What one event loop knows of its ORM thread: that thread's counts, and a cleanup on its way."""

    __slots__ = ("last", "pending")

    def __init__(self) -> None:
        self.last: _Counted | None = None  # None until a cleanup has run there
        self.pending: asyncio.Future | None = None


class _ORMThread:
    """Connection hygiene for the thread where the async ORM runs.

    ``sync_to_async(thread_sensitive=True)`` sends every async ORM call to one thread (in a
    worker, asgiref's shared thread; inside ``async_to_sync``, the caller's), so its connections
    must be cleaned there. A thread hop costs more than a no-op job, so two shortcuts keep it
    cheap without weakening the guarantee:

    - if no query ran in that thread since its last cleanup, there is nothing new to clean
      (that cleanup already re-armed Django's health check);
    - jobs that ask while a cleanup is queued but not yet started share it: it runs after
      everything they did, so it covers them all.

    Which thread that is depends on the event loop (a worker's loop, or the loop of an
    ``async_to_sync`` call such as an inline run), so the state is kept per loop; a loop's first
    cleanup finds its thread. Connections are Django's per thread, so counts are kept per thread.
    """

    def __init__(self) -> None:
        # Per thread, not per ident: a dead thread's ident is reused by a new thread with new connections.
        self._local = threading.local()
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()
        self._clean = sync_to_async(self._clean_in_thread, thread_sensitive=True)

    def _clean_in_thread(self, state: _LoopState) -> None:
        state.pending = None  # from here on, a new request needs a new cleanup
        counted = getattr(self._local, "counted", None)
        if counted is None:
            counted = self._local.counted = _Counted()
        state.last = counted
        counted.queries_at_last_clean = counted.queries
        close_old_connections()

    async def clean(self) -> None:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState()
        if state.last is not None and not state.last.dirty():
            return
        queued = state.pending
        if queued is None:
            queued = state.pending = asyncio.ensure_future(self._clean(state))
        # Shielded: one job's cancellation must not cancel the cleanup others wait for.
        await asyncio.shield(queued)


orm_thread = _ORMThread()


def _call_sync(func: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()


# The executor of the attempt running on this asyncio task (set by ``wrap``), for ``call``.
_executor: contextvars.ContextVar[Executor | None] = contextvars.ContextVar("tasks_app_executor", default=None)


async def call_in_thread(executor: Executor | None, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run sync ``func`` on ``executor`` with the caller's context variables; the thread that runs
    it opens and cleans its own database connection, before and after.

    Cancelled, it returns only once ``func`` has, however many times it is cancelled meanwhile: a thread
    cannot be stopped, so the attempt that called it lasts until then (at most one execution of a job).
    Then it raises ``CancelledError`` if ``func`` had not started, else gives what ``func`` gave (its value,
    or its exception): work done is not thrown away.
    """
    call = functools.partial(contextvars.copy_context().run, _call_sync, func, args, kwargs)
    if executor is None:
        return await asyncio.get_running_loop().run_in_executor(None, call)
    submitted = executor.submit(call)
    future = asyncio.wrap_future(submitted)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if submitted.cancel():  # not started yet: it never will
            raise
    while not future.done():
        with contextlib.suppress(asyncio.CancelledError):  # cancelled again (a forced stop): still running
            await asyncio.wait((future,))
    return future.result()  # what the thread gave, value or exception


async def call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a task's function: a coroutine function on the loop, a sync one in a thread of the
    running attempt's executor, as ``wrap`` does (used by the django.tasks runner)."""
    if inspect.iscoroutinefunction(func):
        return await func(*args, **kwargs)
    return await call_in_thread(_executor.get(), func, *args, **kwargs)


def _interrupted(exc: BaseException) -> TaskInterrupted:
    # SystemExit or KeyboardInterrupt from a task's code (a library calling sys.exit()): asyncio re-raises
    # these out of the event loop, ending the worker with the job's attempt uncounted, so the job would
    # end every worker that takes it. As an Exception the attempt fails (or retries) as for any error.
    return TaskInterrupted(f"The task raised {type(exc).__name__}({exc!s}), which does not stop the worker.")


def wrap(spec: TaskSpec, executor: Executor) -> Callable[..., Any]:
    """The coroutine the worker runs for ``spec``'s jobs: ``async`` tasks on the loop with the ORM
    thread cleaned around them, sync tasks on ``executor``. A ``BaseException`` other than
    ``CancelledError`` from the task is raised as ``TaskInterrupted``, an ``Exception``."""
    func = spec.func

    if spec.is_async:

        async def run(ctx: dict, **kwargs: Any) -> Any:
            _executor.set(executor)  # in this attempt's own asyncio task (and context) only
            await orm_thread.clean()
            try:
                return await func(ctx, **kwargs)
            except (Exception, asyncio.CancelledError):
                raise
            except BaseException as exc:
                raise _interrupted(exc) from exc
            finally:
                await orm_thread.clean()

    else:

        async def run(ctx: dict, **kwargs: Any) -> Any:
            try:
                return await call_in_thread(executor, func, ctx, **kwargs)
            except (Exception, asyncio.CancelledError):
                raise
            except BaseException as exc:
                raise _interrupted(exc) from exc

    run.__qualname__ = run.__name__ = spec.name
    return run
