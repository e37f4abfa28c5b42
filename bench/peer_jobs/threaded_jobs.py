"""The peer jobs as plain functions, for worker threads (huey, dramatiq) and rq's enqueue.

The same work as ``asyncio_jobs.py``, with ``time.sleep`` where that has ``asyncio.sleep``.
"""

import time

from . import probe
from .asyncio_jobs import IO_S


def peer_noop(mark: int = 0) -> None:
    """Nothing, besides what every peer job records (``probe``)."""
    start = time.time()
    probe.finished(mark, start)


def peer_io(mark: int = 0) -> None:
    """20 ms of waiting, like a call to another service."""
    start = time.time()
    time.sleep(IO_S)
    probe.finished(mark, start)
