"""Parsing feeds in processes of their own, each parse with CPU, memory and wall-clock limits.

A feed's bytes are hostile: a crafted document can keep a parser busy for minutes
or make it allocate gigabytes. Parsed on the worker's own process, it would stall
the event loop (every other job waits) and bloat the worker for good. Here:

- A pool of *seats*, one per CPU by default. A seat is a one-process
  ``ProcessPoolExecutor``, so killing a hung parse breaks that seat alone, never the
  parses running in the others. Processes come from the ``forkserver`` context (the
  worker has threads, which makes ``fork`` unsafe), which has ``parsing`` preloaded,
  so a replacement starts in milliseconds. A seat takes the next document while it
  parses one (``QUEUE_DEPTH``); a document queued behind a killed parse is given to the
  replacement process.
- In a parse process, ``RLIMIT_AS`` caps memory (a ``MemoryError``) and, before each
  parse, ``RLIMIT_CPU``'s soft limit is set to the CPU time used so far plus the
  budget (``SIGXCPU`` stops the parse).
- The parent enforces the wall-clock limit, from when the process gets to the
  document: past it, the seat's process is killed and replaced. A process that broke
  a limit is replaced as well, and every one exits with its worker.
- The parse process returns only what ``parsing.parse_feed`` keeps: sanitised,
  capped entries, so the worker's own memory stays bounded.

Every failure is a ``ParseError`` whose message names the limit and its setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import resource
import select
import signal
import threading
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .parsing import ParsedFeed, ParseError, ParseLimits, parse_feed

logger = logging.getLogger(__name__)

MB = 1024 * 1024
QUEUE_DEPTH = 2  # documents given to a parse process at once: the one it parses and the next
WORKER_CHECK_SECONDS = 1.0  # how soon a parse process notices that its worker is gone


# --- in the parse process ------------------------------------------------------------------


class _CpuLimitReached(BaseException):
    """Raised by SIGXCPU inside a parse. A BaseException, so no ``except Exception`` in a parser swallows it."""


_parsing = False  # SIGXCPU between parses (there should be none) is ignored, not raised into the pool's loop


def _on_sigxcpu(signum: int, frame: object) -> None:
    if _parsing:
        raise _CpuLimitReached


def _start_parse_process(memory_bytes: int, worker_pid: int) -> None:
    """Pool initializer: exit with the worker, cap the address space for good (hard limit too), catch SIGXCPU."""
    _exit_with(worker_pid)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    signal.signal(signal.SIGXCPU, _on_sigxcpu)


def _exit_with(pid: int) -> None:
    """Exit soon after process ``pid`` (the worker) has, however it ended.

    A worker that is SIGKILLed cannot tell its pool to stop, and a pool process holds both
    ends of its own job queue, so it would wait for work forever (and keep the forkserver
    alive with it). A pidfd becomes readable when its process exits; a timer signal looks
    once a second. (Not a thread: its malloc arena would reserve 64 MB of the address space.)
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(0)

    def look(signum: int, frame: object) -> None:
        if select.select([pidfd], [], [], 0)[0]:
            os._exit(0)

    signal.signal(signal.SIGALRM, look)
    signal.setitimer(signal.ITIMER_REAL, WORKER_CHECK_SECONDS, WORKER_CHECK_SECONDS)


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _parse_limited(
    content: bytes | bytearray, headers: Mapping[str, str], url: str, limits: ParseLimits, cpu_seconds: int
) -> tuple[str, ParsedFeed | str]:
    """Run ``parse_feed`` with ``cpu_seconds`` of CPU time; returns ``(kind, value)``.

    ``kind`` is ``"parsed"`` (value: the ParsedFeed), ``"invalid"`` (value: the ParseError
    message), ``"cpu"`` or ``"memory"`` (a limit was reached; the process should be replaced).
    """
    global _parsing
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(_cpu_used()) + cpu_seconds  # RLIMIT_CPU counts the process's whole life
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    _parsing = True
    try:
        return "parsed", parse_feed(content, headers, url, limits)
    except ParseError as exc:
        return "invalid", str(exc)
    except _CpuLimitReached:
        return "cpu", ""
    except MemoryError:
        return "memory", ""
    finally:
        _parsing = False
        resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))


# --- in the worker -------------------------------------------------------------------------


class _Seat:
    """A place for one parse process; the process is started on demand and replaced after a kill.

    ``generation`` counts the processes it has had; ``last`` is the job submitted last.
    """

    def __init__(self, context: multiprocessing.context.BaseContext, memory_bytes: int) -> None:
        self._context = context
        self._memory_bytes = memory_bytes
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._pidfd: int | None = None
        self.generation = 0
        self.last: Future | None = None

    async def submit(self, *call: Any) -> tuple[Future, Future | None, int]:
        """Queue ``call`` on this seat's process; returns its future, the job ahead of it and the generation."""
        executor = self._executor
        if executor is None:
            executor = await asyncio.to_thread(self._start)  # it waits on the forkserver: not on the loop
        with self._lock:
            if executor is not self._executor:  # replaced meanwhile: this one is broken
                raise BrokenProcessPool("the parse process was replaced")
            future = executor.submit(*call)
            ahead, self.last = self.last, future
            return future, ahead if ahead is not None and not ahead.done() else None, self.generation

    def _start(self) -> ProcessPoolExecutor:
        # Under the lock, and stored here rather than by the caller: a cancelled caller can
        # neither leak the process nor let a second one start beside it.
        with self._lock:
            if self._executor is None:
                executor = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=self._context,
                    initializer=_start_parse_process,
                    initargs=(self._memory_bytes, os.getpid()),
                )
                # The first job starts the process. Its pidfd names that very process, so a
                # kill can never hit another process that has since reused the pid.
                pid = executor.submit(os.getpid).result()
                self._pidfd = os.pidfd_open(pid)
                self._executor = executor
            return self._executor

    def discard(self, generation: int) -> None:
        """Kill process ``generation``, whatever it is doing; the next parse on this seat starts a new one.

        Nothing happens if that process was already replaced.
        """
        with self._lock:
            if generation != self.generation:
                return
            self.generation += 1
            self.last = None
            executor, self._executor = self._executor, None
            pidfd, self._pidfd = self._pidfd, None
        if pidfd is not None:
            with contextlib.suppress(ProcessLookupError):  # it had died already
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Let the process finish what it is doing and exit."""
        with self._lock:
            executor, self._executor = self._executor, None
            pidfd, self._pidfd = self._pidfd, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        if pidfd is not None:
            os.close(pidfd)


class ParsePool:
    """``processes`` parse processes, each limited to ``memory_mb`` of address space.

    Usable from any thread and any event loop (tests run each task call in a new loop).
    """

    def __init__(self, processes: int, memory_mb: int) -> None:
        self.processes = processes
        self.memory_mb = memory_mb
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["pydotorg.blogs.parsing"])
        self._seats = [_Seat(context, memory_mb * MB) for _ in range(processes)]
        self._lock = threading.Lock()
        # Free places in each seat's queue: while a process parses one document, the next is
        # already on its way to it, so it never waits for the worker to hand it one.
        self._free = dict.fromkeys(self._seats, QUEUE_DEPTH)
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[_Seat]]] = deque()
        self._closed = False

    async def parse(
        self,
        content: bytes | bytearray,
        headers: Mapping[str, str],
        url: str,
        limits: ParseLimits,
        *,
        cpu_seconds: int,
        wall_seconds: float,
    ) -> ParsedFeed:
        """``parsing.parse_feed`` in a parse process, within ``cpu_seconds`` of CPU and ``wall_seconds``.

        The wall clock starts when a parse process takes the document, not while it waits
        for a free one. Raises ParseError for a document that is not a feed and for a parse
        that broke a limit.
        """
        seat = await self._acquire()
        try:
            return await self._parse_on(seat, (content, headers, url, limits, cpu_seconds), wall_seconds)
        finally:
            self._release(seat)

    async def _parse_on(self, seat: _Seat, arguments: tuple, wall_seconds: float) -> ParsedFeed:
        url, cpu_seconds = arguments[2], arguments[4]
        for _ in range(3):
            generation, ahead, submitted = seat.generation, None, False
            try:
                future, ahead, generation = await seat.submit(_parse_limited, *arguments)
                submitted = True
                if ahead is not None:  # the clock starts when the document ahead of this one is done
                    await asyncio.wait([asyncio.wrap_future(ahead)])
                async with asyncio.timeout(wall_seconds):
                    kind, value = await asyncio.wrap_future(future)
                break
            except TimeoutError:
                seat.discard(generation)
                raise ParseError(
                    f"{url}: parsing took over {wall_seconds:g} s (FEEDS_PARSE_TIMEOUT); the parse process was stopped."
                ) from None
            except BrokenProcessPool:
                # Not this document's doing if the process was already gone when it was handed
                # over, was replaced meanwhile, or died over the document ahead of it.
                innocent = not submitted or seat.generation != generation or _broke(ahead)
                seat.discard(generation)
                if innocent:
                    logger.info("%s: its parse process was gone before it got to it; trying a new one", url)
                    continue
                raise ParseError(
                    f"{url}: the parse process died, over its {self.memory_mb} MB memory limit "
                    "(FEEDS_PARSE_MEMORY_MB) or crashed in the parser."
                ) from None
            except asyncio.CancelledError:
                seat.discard(generation)  # the job was cancelled (its timeout, a worker stop): the parse must stop
                raise
        else:
            raise ParseError(f"{url}: its parse process was replaced three times before it could run.")
        if kind == "cpu":
            seat.discard(generation)  # a fresh process for the next parse, whatever state this one was left in
            raise ParseError(
                f"{url}: parsing took over {cpu_seconds} s of CPU time (FEEDS_PARSE_CPU_SECONDS); "
                "the parse was stopped."
            )
        if kind == "memory":
            seat.discard(generation)
            raise ParseError(
                f"{url}: parsing needed over {self.memory_mb} MB of memory (FEEDS_PARSE_MEMORY_MB); "
                "the parse was stopped."
            )
        if kind == "invalid":
            raise ParseError(value)
        return value

    async def _acquire(self) -> _Seat:
        with self._lock:
            if self._closed:
                raise RuntimeError("The parse pool was closed.")
            seat = max(self._free, key=self._free.__getitem__)  # an idle process first
            if self._free[seat]:
                self._free[seat] -= 1
                return seat
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[_Seat] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            return await waiter
        except asyncio.CancelledError:
            # ValueError: a seat is already on its way to us, and _hand_over passes it on.
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove((loop, waiter))
            raise

    def _release(self, seat: _Seat) -> None:
        with self._lock:
            if self._closed:
                seat.close()
                return
            if not self._waiters:
                self._free[seat] += 1
                return
            loop, waiter = self._waiters.popleft()
        # The waiter may belong to another event loop (another thread): hand over on its loop.
        loop.call_soon_threadsafe(self._hand_over, waiter, seat)

    def _hand_over(self, waiter: asyncio.Future[_Seat], seat: _Seat) -> None:
        if waiter.cancelled():
            self._release(seat)
        else:
            waiter.set_result(seat)

    def close(self) -> None:
        """Stop taking parses; idle processes exit now, busy ones when their parse is done."""
        with self._lock:
            self._closed = True
        for seat in self._seats:
            seat.close()


def _broke(job: Future | None) -> bool:
    """Whether ``job`` ended with its process dying (or killed), which takes the jobs queued behind it along."""
    return job is not None and not job.cancelled() and isinstance(job.exception(), BrokenProcessPool)


_pool: ParsePool | None = None
_pool_lock = threading.Lock()


def get_pool(processes: int, memory_mb: int) -> ParsePool:
    """This process's parse pool, replaced when the settings that shape it change."""
    global _pool
    with _pool_lock:
        if _pool is None or (_pool.processes, _pool.memory_mb) != (processes, memory_mb):
            if _pool is not None:
                _pool.close()
            _pool = ParsePool(processes, memory_mb)
        return _pool
