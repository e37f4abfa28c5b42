"""The peer jobs as async functions: run by ``manage.py runworker`` (registered in
``bench/settings.py``) and by the bare ``saq`` worker (``saq_worker.py``).

``threaded_jobs.py`` has the same jobs for worker threads; the only difference is the sleep,
``asyncio.sleep`` here and ``time.sleep`` there, as each kind of worker is meant to be used.
"""

import asyncio
import time

from . import probe

IO_S = 0.02  # the I/O job's wait: 20 ms


async def peer_noop(ctx, mark: int = 0) -> None:
    """Nothing, besides what every peer job records (``probe``)."""
    start = time.time()
    await probe.afinished(mark, start)


async def peer_io(ctx, mark: int = 0) -> None:
    """20 ms of waiting, like a call to another service."""
    start = time.time()
    await asyncio.sleep(IO_S)
    await probe.afinished(mark, start)
