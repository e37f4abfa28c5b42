"""The rate-limited job of ``bench/limits.py``: the peer no-op job (``peer_jobs/probe.py`` records it), with
``@task(rate_limit=...)`` at ``BENCH_RATE_LIMIT`` (default ``"200/s"``), one limiter for every job."""

import os
import time

from tasks_app import task

from .peer_jobs import probe


@task(rate_limit=os.environ.get("BENCH_RATE_LIMIT", "200/s"), rate_limit_key="bench")
async def limited_noop(ctx, mark: int = 0) -> None:
    start = time.time()
    await probe.afinished(mark, start)
