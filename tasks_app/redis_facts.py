"""What a process knows of each queue's Redis: the primary it talks to, whether through Sentinel, its
replicas, and why it cannot reach it, as one line naming the setting to fix.

Used by ``runworker --check`` (``process/health.py``), a worker's start-up (``process/runner.py``) and
``runworker``'s pre-flight (``require``: exit 2, one line), and ``stats.json`` (``connection_facts``).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio.sentinel import MasterNotFoundError, SentinelConnectionPool
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError, ResponseError

from . import conf, redis_urls
from .engine.probe import exercise
from .engine.queue import AtomicRedisQueue
from .exceptions import ServiceUnavailable, reason
from .redaction import redact_url

PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ConnectionFacts:
    """``primary``: host:port (or socket path) of the server written to, None when unreachable;
    ``sentinel``: found through Sentinel; ``replicas``: replicas connected to it (``INFO replication``);
    ``wait_replicas``: replicas each enqueue waits for (0: none); ``acknowledged``: replicas that confirmed
    this process's last enqueueing write (None before one, or without ``wait_replicas``);
    ``error``: one line naming the setting to fix, or None."""

    queue: str
    primary: str | None
    sentinel: bool
    replicas: int | None
    wait_replicas: int
    acknowledged: int | None
    error: str | None = None
    unreachable: str | None = None  # for a plain connection failure (nothing else wrong): its cause, alone

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def facts(queue: AtomicRedisQueue, probe: bool = False) -> ConnectionFacts:
    """``queue``'s connection facts, read now (a round trip to the sentinels and one to the primary).
    ``probe`` also tries the commands the queue needs (for start-up checks). Never raises for Redis errors:
    they become ``error``."""
    config = conf.queue_config(queue.name)
    durability = queue.durability
    through = isinstance(queue.redis.connection_pool, SentinelConnectionPool)
    primary = None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            primary, through = await redis_urls.primary_of(queue.redis)
            replication = await queue.redis.info("replication")
            if probe:
                await exercise(queue)
    except (RedisError, OSError, TimeoutError) as exc:
        error = describe(queue.name, exc)
        plain = reason(exc) if error.startswith("Cannot reach Redis") else None
        return ConnectionFacts(queue.name, primary, through, None, config.wait_replicas, None, error, plain)
    replicas = int(replication.get("connected_slaves", 0))
    error = None
    if replication.get("role") != "master":
        error = f"{_where(queue.name)}: {primary} is a replica, not a primary; {_fix(queue.name)}"
    elif config.wait_replicas > replicas:
        error = (
            f"{_where(queue.name)}: wait_replicas={config.wait_replicas}, but {primary} has {replicas} replica(s) "
            f"connected, so no enqueue can be confirmed; start replicas, or lower wait_replicas in "
            f"{conf.setting_name('QUEUES', queue.name, 'URL')}"
        )
    acknowledged = durability.acknowledged if durability is not None else None
    return ConnectionFacts(queue.name, primary, through, replicas, config.wait_replicas, acknowledged, error)


def describe(name: str, exc: BaseException) -> str:
    """One line (no password) saying why queue ``name``'s Redis cannot be used and which setting to fix:
    for every caller that turns a Redis error into words (commands, the dashboard, start-up checks)."""
    fix = _fix(name)
    where = _where(name)
    if problem := redis_urls.problem(conf.queue_config(name).url):  # a missing TLS file, say
        return f"{where} {problem}; {fix}"
    if isinstance(exc, MasterNotFoundError):  # redis_urls.Sentinels says which: no sentinel, or no primary
        return f"{where}: {reason(exc)}; {fix}"
    if isinstance(exc, NoPermissionError):
        return (
            f"{where}: the Redis user may not run a command tasks_app needs ({reason(exc)}); grant it with the "
            f"ACL SETUSER line in docs/operating.md, or {fix}"
        )
    if isinstance(exc, AuthenticationError) or "WRONGPASS" in str(exc) or "NOAUTH" in str(exc):
        return f"{where}: Redis refused the user name or password; {fix}"
    if isinstance(exc, ResponseError):
        return f"{where}: Redis refused: {reason(exc)}; {fix}"
    return _unreachable(name, exc)


def _unreachable(name: str, exc: BaseException) -> str:
    # Queue ``name``'s Redis (URL redacted) did not answer, why, and the setting to fix.
    # Worded as runworker's own ping was (operators and their alerts know it).
    return f"Cannot reach Redis for {_where(name)}: {reason(exc)}. Start Redis, or {_fix(name)}"


def _where(name: str) -> str:
    return f"queue {name!r} at {redact_url(conf.queue_config(name).url)}"


def _fix(name: str) -> str:
    return f"fix {conf.setting_name('QUEUES', name, 'URL')}."


async def connection_facts(names: list[str] | None = None) -> list[dict[str, Any]]:
    """For the dashboard and ``stats.json``: each queue's facts as a dict (see ``ConnectionFacts``), read
    through the process's cached queues (so ``acknowledged`` is this process's last write's)."""
    from .enqueueing.connections import get_queue

    names = names if names is not None else list(conf.queues())
    found = await asyncio.gather(*(facts(get_queue(name)) for name in names))
    return [item.as_dict() for item in found]


async def require(queue: AtomicRedisQueue) -> ConnectionFacts:
    """``queue``'s facts, after trying the commands it needs; raises ``ServiceUnavailable`` with the one-line
    reason when its Redis cannot serve it (a worker's start-up: ``runworker`` exits 2)."""
    found = await facts(queue, probe=True)
    if found.error:
        raise ServiceUnavailable(found.error)
    return found
