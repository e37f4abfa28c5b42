"""``runworker --check``: an exit code for liveness and readiness probes.

0: every queue has a live worker and the database answers; 1: a queue has no live worker;
2: Redis or the database cannot be reached. Nothing printed holds a password. A paused queue
(``pausequeue``) is said to be paused, but is healthy: pausing is an operator's choice, and a
probe that failed on it would have the orchestrator restart workers that are fine.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError

from .. import conf, redis_facts
from ..display import show_time
from ..engine import memory_policy, pausing
from ..engine.clock import redis_now_ms
from ..enqueueing.connections import make_queue
from ..exceptions import ServiceUnavailable
from ..redaction import redact_url
from ..redis_facts import ConnectionFacts
from .runner import check_database, describe_database

HEALTHY, NO_WORKERS, UNREACHABLE = 0, 1, 2


@dataclass
class QueueHealth:
    queue: str
    workers: int | None
    queued: int | None
    error: str | None = None
    paused: dict | None = None
    memory_policy: str | None = None
    connection: ConnectionFacts | None = None  # the primary reached, through Sentinel or not, replicas


async def _probe(name: str) -> QueueHealth:
    try:
        queue = make_queue(name, socket_timeout=5)
    except ImproperlyConfigured as exc:  # a URL no client can be made of (the checks say it too: E014)
        wrong = ConnectionFacts(name, None, False, None, 0, None, error=str(exc))
        return QueueHealth(name, workers=None, queued=None, error=str(exc), connection=wrong)
    try:
        # First: whether this Redis can serve the queue at all (Sentinel, TLS, ACL, replicas), in one line.
        connection = await redis_facts.facts(queue, probe=True)
        if connection.unreachable:
            return QueueHealth(name, workers=None, queued=None, error=connection.unreachable)
        if connection.error:
            return QueueHealth(name, workers=None, queued=None, error=connection.error, connection=connection)
        await queue.connect()
        workers, queued = await asyncio.wait_for(_workers_and_queued(queue), timeout=5)
        paused = await asyncio.wait_for(pausing.paused(queue), timeout=5)
        policy = await asyncio.wait_for(memory_policy.read_policy(queue.redis), timeout=5)
        return QueueHealth(
            name,
            workers=workers,
            queued=queued,
            paused=paused,
            memory_policy=policy,
            connection=connection,
        )
    except (RedisError, OSError, TimeoutError) as exc:
        return QueueHealth(name, workers=None, queued=None, error=str(exc) or type(exc).__name__)
    finally:
        with contextlib.suppress(Exception):  # nothing to close if it never connected
            await queue.disconnect()


async def _workers_and_queued(queue) -> tuple[int, int]:
    """Live workers, judged on Redis's clock as the dashboard and the metrics judge them (SAQ's
    ``info()`` compares with this host's: a probe on a host whose clock is ahead of Redis's saw none),
    and queued jobs. SAQ scores each worker's entry with the time its info expires."""
    now_ms = await redis_now_ms(queue.redis)
    return await queue.redis.zcount(queue.stats_key, now_ms, "+inf"), await queue.count("queued")


async def probe(names: list[str]) -> list[QueueHealth]:
    return list(await asyncio.gather(*(_probe(name) for name in names)))


def database_error() -> str | None:
    """None when the default database answers, else what is wrong (no password)."""
    try:
        check_database()
    except (ServiceUnavailable, ImproperlyConfigured) as exc:
        return str(exc)
    return None


def exit_code(results: list[QueueHealth], database: str | None) -> int:
    if database or any(result.error for result in results):
        return UNREACHABLE
    if any(not result.workers for result in results):
        return NO_WORKERS
    return HEALTHY


def describe(result: QueueHealth) -> str:
    if result.connection is not None and result.connection.error:
        return result.connection.error  # names the queue, its URL (redacted) and the setting to fix
    if result.error:
        url = redact_url(conf.queue_config(result.queue).url)
        setting = conf.setting_name("QUEUES", result.queue, "URL")
        return f"queue {result.queue!r}: Redis unreachable at {url} ({result.error}); check {setting}"
    state = "ok" if result.workers else "NO live workers"
    if result.paused is not None:
        at = result.paused.get("at")
        since = f" since {show_time(at)}" if at else ""
        state += f", PAUSED by {result.paused.get('by', '?')}{since} (its workers take no new jobs; resumequeue)"
    line = f"queue {result.queue!r}: {state} ({result.workers} worker(s), {result.queued} queued)"
    line += describe_connection(result.connection)
    evicting = memory_policy.problem(result.memory_policy or memory_policy.UNKNOWN, "its Redis")
    return f"{line}\n  WARNING: {evicting}" if evicting else line


def describe_connection(found: ConnectionFacts | None) -> str:
    """The primary reached, e.g. ``; primary 10.0.0.2:6379 (through Sentinel), 1 replica(s)``."""
    if found is None or found.primary is None:
        return ""
    text = f"; primary {found.primary}{' (through Sentinel)' if found.sentinel else ''}"
    if found.replicas is not None:
        text += f", {found.replicas} replica(s)"
    if found.wait_replicas:
        text += f", each enqueue waits for {found.wait_replicas}"
    return text


def describe_db(error: str | None) -> str:
    return error or f"database: ok ({describe_database('default')})"
