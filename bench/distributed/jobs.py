"""The harness's own tasks (registered by dotted path in ``bench/distributed/settings.py``).

Every execution of every job, these and the site's own (``index_content``, run for the page saves
of the load), is recorded by the ledger's hooks (``ledger.py``), not by the tasks themselves.
"""

import asyncio


async def dist_work(ctx, seconds: float = 0.05, n: int = 0) -> int:
    """A job of the load: waits ``seconds`` (I/O-like, so that faults find jobs running); returns ``n``."""
    await asyncio.sleep(seconds)
    return n


async def dist_cron(ctx) -> None:
    """The load's cron entry (every 5 s): nothing but what the ledger records."""
    return None


def dist_spin(ctx, iterations: int = 20_000) -> int:
    """A CPU-bound job for the throughput figure: a loop of ``iterations`` additions, in a worker thread."""
    total = 0
    for i in range(iterations):
        total += i
    return total
