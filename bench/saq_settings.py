"""Settings for a bare ``saq`` CLI worker, the no-op baseline (no Django involved)."""

import os

from saq import Queue


async def noop(ctx) -> None:
    return None


settings = {
    "queue": Queue.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")),
    "functions": [noop],
    "concurrency": int(os.environ.get("BENCH_CONCURRENCY", "10")),
}
