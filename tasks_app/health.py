"""``runworker --check``: an exit code for liveness and readiness probes."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from redis.exceptions import RedisError

from . import conf
from .queues import make_queue

HEALTHY, NO_WORKERS, REDIS_DOWN = 0, 1, 2


@dataclass
class QueueHealth:
    queue: str
    workers: int
    queued: int
    error: str | None = None


async def _probe(name: str) -> QueueHealth:
    queue = make_queue(name)
    try:
        await queue.connect()
        info = await asyncio.wait_for(queue.info(), timeout=5)
        return QueueHealth(name, workers=len(info["workers"]), queued=info["queued"])
    except (RedisError, OSError, TimeoutError) as exc:
        return QueueHealth(name, workers=0, queued=0, error=f"{exc or type(exc).__name__}")
    finally:
        with contextlib.suppress(Exception):  # nothing to close if it never connected
            await queue.disconnect()


async def probe(names: list[str]) -> list[QueueHealth]:
    return list(await asyncio.gather(*(_probe(name) for name in names)))


def exit_code(results: list[QueueHealth]) -> int:
    if any(result.error for result in results):
        return REDIS_DOWN
    if any(result.workers == 0 for result in results):
        return NO_WORKERS
    return HEALTHY


def describe(result: QueueHealth) -> str:
    if result.error:
        url = conf.queue_config(result.queue).url
        return f"queue {result.queue!r}: Redis unreachable at {url} ({result.error}); check REDIS_URL"
    state = "ok" if result.workers else "NO live workers"
    return f"queue {result.queue!r}: {state} ({result.workers} worker(s), {result.queued} queued)"
