"""When ``runworker --burst`` is done: the burst workers of one process (one per queue) end together, once
none of their queues has a job queued, running (here or on another worker) or due within
``LOOKAHEAD_S``, and a last look (``Worker._last_look``: a sweep, one outbox drain) found nothing more.

Together, because a job of one queue may queue work on another (a chain's next step, a job it enqueues):
a worker whose own queue is empty waits while its siblings' jobs run. Redis's view decides (the queues'
lists and schedule), not the workers' own, so that a job taken but not yet started counts as running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from . import sweeping
from .queue import AtomicRedisQueue

# How far ahead a --burst worker looks for scheduled jobs (retries with backoff) before exiting.
LOOKAHEAD_S = 5.0
# How often an idle --burst slot looks again while jobs run (one of this process's ending wakes it sooner).
POLL_S = 0.2


class BurstGroup:
    """The queues of one process's burst workers, and an event set as any of their attempts ends."""

    def __init__(self, queues: Sequence[AtomicRedisQueue]) -> None:
        self.queues = list(queues)
        self.attempt_ended = asyncio.Event()

    async def work_ahead(self) -> bool:
        """Whether any of the queues has a job queued, running or due within ``LOOKAHEAD_S`` (never while
        paused, and not for an index entry whose record is gone: see ``sweeping.due_within``)."""
        for queue in self.queues:
            if await sweeping.due_within(queue, LOOKAHEAD_S):
                return True
        return False

    async def until_an_attempt_ends(self) -> None:
        """Return when an attempt of these workers ends, or after ``POLL_S`` (for jobs run elsewhere)."""
        self.attempt_ended.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(POLL_S):
                await self.attempt_ended.wait()
