"""What a worker's start-up check of its Redis costs (``redis_facts.require``: ``runworker``'s start and
``runworker --check``), on an idle Redis, against the blocking probe it used to send.

    uv run python bench/startup_probe.py [--times 20]

The check tries every command a queue needs, BLMOVE among them, so that an ACL user lacking one is told at
start-up. BLMOVE on an empty list, alone, waits out its timeout (10 ms), and Redis notices the timeout only
when its event loop wakes: at its next tick (``hz`` 10: every 100 ms) on an idle server. On a list of one
entry (as the check now sends it) it returns at once. The figure: milliseconds per call, median and max of
``--times``, for the whole check as it is now and for the bare blocking BLMOVE it sent before. Redis is a
server of the bench's own, idle between calls (a busy Redis wakes sooner, which is why ``bench/peers.py``,
whose Redis is polled every 50 ms, hardly sees it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

from bench.support import start_own_redis_server  # noqa: E402

SERVER = start_own_redis_server("startup-probe")

import django  # noqa: E402

django.setup()

from redis.asyncio import from_url  # noqa: E402

from tasks_app import redis_facts  # noqa: E402
from tasks_app.engine.queue import AtomicRedisQueue  # noqa: E402


async def measure(times: int) -> dict[str, list[float]]:
    queue = AtomicRedisQueue(from_url(SERVER.url), name="default")
    await queue.connect()
    figures: dict[str, list[float]] = {"redis_facts.require (now)": [], "a bare BLMOVE, 10 ms (before)": []}
    calls = {
        "redis_facts.require (now)": lambda: redis_facts.require(queue),
        "a bare BLMOVE, 10 ms (before)": lambda: queue.redis.blmove("probe", "probe", 0.01, "LEFT", "RIGHT"),
    }
    try:
        for _ in range(times):
            for name, call in calls.items():
                await asyncio.sleep(0.13)  # idle: no other client wakes Redis meanwhile
                began = time.perf_counter()
                await call()
                figures[name].append((time.perf_counter() - began) * 1000)
    finally:
        await queue.disconnect()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--times", type=int, default=20, help="calls of each (default 20)")
    args = parser.parse_args()
    if args.times < 1:
        parser.error("--times must be at least 1")
    try:
        figures = asyncio.run(measure(args.times))
    finally:
        SERVER.stop()
    print(f"milliseconds per call on an idle Redis, {args.times} calls each:")
    for name, values in figures.items():
        print(f"  {name:<32} median {statistics.median(values):6.1f}   max {max(values):6.1f}")


if __name__ == "__main__":
    main()
