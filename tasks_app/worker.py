"""SAQ's Worker, made safe for Django.

What this adds to ``saq.Worker``:

- every task runs through a job wrapper (``jobs.wrap``) that cleans database
  connections in the thread that used them;
- running jobs are heartbeated, so a job whose worker was SIGKILLed is swept
  and run again after ``heartbeat`` seconds, not after its whole timeout;
- an idle worker stops at once on SIGTERM (SAQ waits out the grace period);
- cron jobs are built like any other enqueue, with the task's own options;
- in burst mode, retries that are due within a few seconds are waited for;
- the outbox of ``enqueue_on_commit`` is drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import saq
from croniter import croniter
from django.conf import settings
from django.utils.module_loading import import_string
from saq.utils import now as saq_now

from . import conf, outbox
from .enqueue import build_job
from .jobs import log_finished_job, stamp_start, wrap
from .queues import make_queue
from .registry import registry

logger = logging.getLogger("tasks_app.worker")

HEARTBEAT_TICK_S = 1.0

# How far ahead --burst looks for scheduled jobs (retries with backoff) before exiting.
BURST_LOOKAHEAD_S = 5.0


@dataclass(frozen=True)
class WorkerOptions:
    queue: str
    concurrency: int
    burst: bool = False
    max_burst_jobs: int | None = None


class DjangoWorker(saq.Worker):
    SIGNALS = []  # signals are handled once per process by tasks_app.runner

    def __init__(self, options: WorkerOptions) -> None:
        queue = make_queue(options.queue)
        timers = conf.timers()
        self.outbox_interval = float(timers.pop("outbox", 5))
        # Every task can run on every queue: a task's queue is only where it goes by default.
        specs = registry.all()
        hooks = {name: [import_string(path) for path in paths] for name, paths in conf.hooks().items()}
        super().__init__(
            queue,
            functions=[(spec.name, wrap(spec, self)) for spec in specs],
            concurrency=options.concurrency,
            startup=hooks["startup"] or None,
            shutdown=hooks["shutdown"] or None,
            before_process=[stamp_start, *hooks["before_process"]],
            after_process=[*hooks["after_process"], log_finished_job],
            timers=timers,
            # A bounded dequeue lets idle slots notice shutdown within a second.
            dequeue_timeout=0.5 if options.burst else 1.0,
            burst=options.burst,
            max_burst_jobs=options.max_burst_jobs,
            shutdown_grace_period_s=conf.shutdown_grace_period(),
            metadata={
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started": int(time.time()),
                "queues": [options.queue],
                "concurrency": options.concurrency,
            },
        )
        # One thread per slot, so sync tasks are not capped by the default pool size.
        self.pool = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix=f"saq-{options.queue}")
        self.cron_entries = [entry for entry in conf.cron_jobs() if registry.get(entry.task).queue == options.queue]
        self.cron_tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
        self._upkeep_tasks: list[asyncio.Task] = []
        self.forced = asyncio.Event()

    async def upkeep(self) -> list[asyncio.Task]:
        tasks = await super().upkeep()
        tasks.append(asyncio.create_task(self._every(self.heartbeat, HEARTBEAT_TICK_S)))
        if self.queue.name == conf.DEFAULT_QUEUE:
            tasks.append(asyncio.create_task(self._every(self.drain_outbox, self.outbox_interval)))
        self._upkeep_tasks = tasks
        return tasks

    async def _every(self, func, interval: float) -> None:
        while not self.event.is_set():
            try:
                await func()
            except Exception:
                logger.exception("Upkeep %s failed", func.__name__)
            await asyncio.sleep(interval)

    async def heartbeat(self) -> None:
        """Touch running jobs a few times per heartbeat, so the sweep can tell live jobs from orphans."""
        now = saq_now()
        for job in list(self.job_task_contexts):
            if job.heartbeat and now - job.touched >= job.heartbeat * 1000 / 3:
                await job.update()

    async def drain_outbox(self) -> None:
        # A burst run drains everything at once; a long-running worker leaves fresh rows to their on_commit.
        await outbox.drain(grace=0 if self.burst else outbox.DRAIN_GRACE_S)

    async def schedule(self, lock: int = 1) -> None:
        if not self.burst:
            now = datetime.now(self.cron_tz)
            for entry in self.cron_entries:
                at = croniter(entry.cron, now).get_next(datetime)
                # A fixed key per task: a pending run is never duplicated, so runs never pile up.
                _, job = build_job(entry.task, entry.kwargs, key=f"cron:{entry.task}", at=at, **entry.options)
                await self.queue.enqueue(job)
        job_ids = await self.queue.schedule(lock)
        if job_ids:
            logger.debug("Scheduled %s", job_ids)

    async def process(self) -> bool:
        while True:
            dequeued = await super().process()
            if dequeued or not self.burst or self.event.is_set():
                return dequeued
            if not await self._jobs_due_soon():
                return False

    async def _jobs_due_soon(self) -> bool:
        horizon = time.time() + BURST_LOOKAHEAD_S
        return bool(await self.queue.redis.zcount(self.queue._incomplete, 0, horizon))

    async def stop(self) -> None:
        """Stop dequeuing; give in-flight jobs the grace period (cut short by ``force``), then re-queue them."""
        self.event.set()
        for task in self._upkeep_tasks:  # they hold no job
            task.cancel()
        await asyncio.gather(*self._upkeep_tasks, return_exceptions=True)
        pending = [task for task in self.tasks if not task.done() and task not in self._upkeep_tasks]
        if pending:
            forced = asyncio.create_task(self.forced.wait())
            everything = asyncio.gather(*pending, return_exceptions=True)
            grace = conf.shutdown_grace_period()
            await asyncio.wait([everything, forced], timeout=grace, return_when="FIRST_COMPLETED")
            forced.cancel()
        # Whatever still runs is cancelled by SAQ now, which re-queues its job.
        self.tasks = {task for task in self.tasks if not task.done()}
        self._shutdown_grace_period_s = 0
        await super().stop()
        # A clean stop leaves the dashboard and health checks at once; Redis may be gone, then it expires.
        with contextlib.suppress(Exception):
            await self.queue.forget_worker(self.id)

    def force_stop(self) -> None:
        self.event.set()
        self.forced.set()
