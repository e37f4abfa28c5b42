"""A worker's dealings with the services it needs: an outage of Redis or the database is logged once
when it starts and once when it ends, with a back-off between tries; and the periodic chores
(``Upkeep``) that the worker runs on its own schedule."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..backoff import backoff
from ..exceptions import ReplicasNotConfirmed

logger = logging.getLogger("tasks_app.worker")

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
DATABASE = "the database"
# The service a durable queue's writes wait for (``engine/replication.py``): Redis answers, its replicas do not.
REPLICAS = "the replicas' confirmation"


@dataclass(frozen=True)
class Upkeep:
    """A periodic chore of the worker's own (e.g. draining an outbox), run every ``interval`` seconds.

    ``uses``: the services a successful run has certainly reached, so an outage of them is over.
    """

    name: str
    run: Callable[[], Awaitable[Any]]
    interval: float | Callable[[], float]
    uses: tuple[str, ...] = ()
    # A run may queue jobs (the outbox's drain): a --burst worker runs it once more before it ends, after
    # the run under way (``running``): a drain skips the rows another holds, which may not be in Redis yet.
    feeds: bool = False
    running: asyncio.Lock = field(default_factory=asyncio.Lock, compare=False)
    # Set when ``interval`` may have become shorter than the wait under way (a job with a short
    # heartbeat started): the wait then ends at the new interval, counted from now.
    wake: asyncio.Event | None = field(default=None, compare=False)

    def seconds(self) -> float:
        return self.interval() if callable(self.interval) else self.interval

    async def run_alone(self) -> Any:
        """``run``, once the run under way (the periodic one, or a --burst worker's last look) has ended."""
        async with self.running:
            return await self.run()

    async def rest(self, seconds: float) -> None:
        """Wait ``seconds`` (or less: see ``wake``) before the next run."""
        if self.wake is None:
            await asyncio.sleep(seconds)
            return
        loop = asyncio.get_running_loop()
        # The interval may have shortened while this chore ran, before the wake below was cleared.
        deadline = loop.time() + min(seconds, self.seconds())
        while (left := deadline - loop.time()) > 0:
            self.wake.clear()
            try:
                async with asyncio.timeout(left):
                    await self.wake.wait()
            except TimeoutError:
                return
            deadline = min(deadline, loop.time() + self.seconds())


@dataclass
class Outages:
    """Log a lost service once when it goes, and once when it comes back.

    ``quiet``: services whose outages something else logs already (a Sentinel client's watch names the
    primary it lost and the one it reached), so that an outage is one pair of lines, not two.
    """

    since: dict[str, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    quiet: frozenset[str] = frozenset()
    database_held: bool = False  # an attempt found the database down: no job is taken until it answers
    _probe: asyncio.Future | None = None

    def failed(self, service: str, exc: BaseException) -> float:
        """Record a failure; returns how long to wait before trying again (0.25 s, doubling, to 5 s)."""
        if service not in self.since:
            self.since[service] = time.monotonic()
            logger.log(
                logging.DEBUG if service in self.quiet else logging.ERROR,
                "Lost %s (%s); retrying until it is back.",
                service,
                exc or type(exc).__name__,
                extra={"service": service, "event": "outage"},
            )
        self.failures[service] = self.failures.get(service, 0) + 1
        return backoff(self.failures[service], 0.25, 5.0)

    async def database_down(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the database is down: a database error, and the database does not answer
        now (a failed query, the database answering, is not an outage). Records the outage if so: then
        ``database_wait`` holds the worker's takes until the database answers."""
        if service_of(exc) != DATABASE or await self._database_answers():
            return False
        self.failed(DATABASE, exc)
        self.database_held = True
        return True

    async def database_wait(self) -> float | None:
        """None unless an attempt found the database down (``database_down``) and it still does not answer;
        then the seconds to wait before asking again (0.25 s, doubling, to 5 s). Only an attempt's finding
        holds takes: an outbox drain's failure on another database is that drain's own to log."""
        if not self.database_held:
            return None
        if await self._database_answers():
            self.database_held = False
            self.succeeded(DATABASE)
            return None
        return self.failed(DATABASE, ConnectionError("it does not answer"))

    async def _database_answers(self) -> bool:
        # One probe at a time for all of a worker's slots: each would otherwise open its own connection.
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(database_answers())
        return await asyncio.shield(self._probe)

    def succeeded(self, service: str) -> None:
        started = self.since.pop(service, None)
        self.failures.pop(service, None)
        if started is not None:
            logger.log(
                logging.DEBUG if service in self.quiet else logging.WARNING,
                "%s is back after %.1fs.",
                service[:1].upper() + service[1:],
                time.monotonic() - started,
                extra={"service": service, "event": "recovered"},
            )


# Seconds a probe of the database may take: one that accepts connections and never answers is down too.
DATABASE_PROBE_S = 5.0


def on_daemon_thread[T](func: Callable[[], T], name: str) -> concurrent.futures.Future[T]:
    """``func()`` run on a daemon thread of its own, its value (or what it raised) in the future returned. For
    a database call that may never return (a server that accepts connections and never answers): waited for
    with a timeout, it holds neither a pool's thread nor the process's exit."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(func())
        except BaseException as exc:  # the caller's to judge
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def _ping() -> None:
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # this thread's own connection: the thread ends here


async def database_answers() -> bool:
    """Whether the default database answers a query now, on a connection of its own (closed after), within
    ``DATABASE_PROBE_S``: what tells a database that is down from a query that failed."""
    from django.db import DatabaseError

    try:
        await asyncio.wait_for(asyncio.wrap_future(on_daemon_thread(_ping, "database-probe")), DATABASE_PROBE_S)
    except (DatabaseError, TimeoutError):
        return False
    return True


def service_of(exc: BaseException) -> str | None:
    """Which outside service an exception says is unreachable: "Redis", "the database", "the replicas'
    confirmation", or None."""
    from django.db import InterfaceError, OperationalError

    if isinstance(exc, (OperationalError, InterfaceError)):
        return DATABASE
    if isinstance(exc, ReplicasNotConfirmed):  # Redis answers; its replicas do not confirm (a log of its own)
        return REPLICAS
    if isinstance(exc, REDIS_ERRORS):
        return "Redis"
    return None


async def settle(call: asyncio.Future) -> Any:
    """The result of ``call``, a Redis call still in flight when its caller was cancelled (Redis runs it all
    the same, and what it did must be known), or None if it failed."""
    try:
        return await call
    except Exception:
        return None
