"""Run one or more DjangoWorkers in this process, with signal handling and clean exit."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.db import connections
from redis.exceptions import RedisError

from . import conf, web
from .queues import adopt_queue, disconnect_all
from .stopping import StopRequests
from .worker import DjangoWorker, WorkerOptions

logger = logging.getLogger("tasks_app.worker")


class RedisUnavailable(Exception):
    def __init__(self, queue: str, url: str, error: Exception) -> None:
        super().__init__(
            f"Cannot reach Redis for queue {queue!r} at {url}: {error}. "
            f'Start Redis, or fix the REDIS_URL environment variable (SAQ["QUEUES"]["{queue}"]["URL"]).'
        )


async def ping(worker: DjangoWorker) -> None:
    url = conf.queue_config(worker.queue.name).url
    try:
        await asyncio.wait_for(worker.queue.redis.ping(), timeout=5)
    except (RedisError, OSError, TimeoutError) as exc:
        raise RedisUnavailable(worker.queue.name, url, exc) from exc


def _install_signal_handlers(workers: list[DjangoWorker]) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # e.g. call_command from a test thread: no signals to handle
    loop = asyncio.get_running_loop()
    requests = StopRequests()

    def on_signal(signum: signal.Signals) -> None:
        request = requests.receive()
        if request == "stop":
            logger.warning(
                "%s: stopping; in-flight jobs get %.0fs to finish, then are re-queued. Send again to force.",
                signum.name,
                conf.shutdown_grace_period(),
            )
            for worker in workers:
                worker.event.set()
        elif request == "force":
            logger.warning("%s again: re-queueing in-flight jobs and exiting now.", signum.name)
            for worker in workers:
                worker.force_stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)

    def remove() -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)

    return remove


OnReady = Callable[[list[DjangoWorker]], None]


async def run_workers(
    options: list[WorkerOptions], on_ready: OnReady | None = None, monitor: tuple[str, int] | None = None
) -> None:
    workers = [DjangoWorker(option) for option in options]
    remove_handlers = lambda: None  # noqa: E731
    web_runner = None
    try:
        for worker in workers:
            await worker.queue.connect()
            adopt_queue(worker.queue)  # jobs that enqueue reuse the worker's connection pool
            await ping(worker)
        if monitor is not None:
            web_runner = await web.serve([worker.queue for worker in workers], *monitor)
        if on_ready is not None:
            on_ready(workers)
        remove_handlers = _install_signal_handlers(workers)
        # Django's start-up objects live as long as the worker: keep the cyclic GC
        # from walking them again and again while jobs allocate.
        gc.freeze()
        await asyncio.gather(*(worker.start() for worker in workers))
    finally:
        remove_handlers()
        if web_runner is not None:
            await web_runner.cleanup()
        await disconnect_all()
        # The async ORM's connections live in its own thread: close them there.
        await sync_to_async(connections.close_all, thread_sensitive=True)()


def run(options: list[WorkerOptions], on_ready: OnReady | None = None, monitor: tuple[str, int] | None = None) -> None:
    asyncio.run(run_workers(options, on_ready, monitor))
