"""Run one or more workers in this process: build them from the settings, handle signals, exit cleanly."""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import json
import logging
import os
import re
import signal
import socket
import threading
import time
import zoneinfo
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import sync_to_async
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.utils.module_loading import import_string
from saq.job import Job

from .. import conf, redis_facts
from ..engine.burst import BurstGroup
from ..engine.outages import on_daemon_thread
from ..engine.worker import CronSchedule, Upkeep, Worker
from ..enqueueing import outbox
from ..enqueueing.building import build_job
from ..enqueueing.connections import adopt_queue, disconnect_all, make_queue
from ..exceptions import ServiceUnavailable, reason
from ..registry import registry
from ..signals import worker_add_ons
from . import monitor
from .signals import STOP_SIGNALS, StopRequests
from .task_wrapper import wrap

logger = logging.getLogger("tasks_app.worker")


@dataclass(frozen=True)
class WorkerOptions:
    queue: str
    concurrency: int
    burst: bool = False
    max_burst_jobs: int | None = None


def _cron_job(entry: conf.CronConfig, at: datetime) -> Job:
    # The entry's one key (the schedule is named after the task): runs never pile up.
    return build_job(entry.task, entry.kwargs, key=CronSchedule.key_of(entry.task), at=at, **entry.options).job


def _fingerprint(entry: conf.CronConfig) -> str:
    """What makes one version of a cron entry differ from another: all of it, and the time zone."""
    fields = [entry.task, entry.cron, entry.kwargs, entry.options, settings.TIME_ZONE]
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cron_schedules(queue: str, skip_unknown: bool = False) -> list[CronSchedule]:
    """The cron entries of ``SAQ["CRON_JOBS"]`` whose task goes to ``queue``, as its workers run them.
    Raises ``TaskNotFound`` for an entry naming no registered task (check E004 says so first), unless
    ``skip_unknown``, which leaves such entries out."""
    return [
        CronSchedule(entry.cron, functools.partial(_cron_job, entry), entry.task, _fingerprint(entry))
        for entry in conf.cron_jobs()
        if not (skip_unknown and entry.task not in registry) and registry.get(entry.task).queue == queue
    ]


def build_worker(options: WorkerOptions, drain_outbox: bool) -> Worker:
    """A worker for ``options.queue`` running every registered task, with the settings' hooks,
    timers, grace period and cron entries; ``drain_outbox`` adds the outbox drain to its upkeep."""
    executor = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix=f"saq-{options.queue}")
    timers = conf.timers()
    outbox_interval = float(timers.pop("outbox"))
    hooks = {name: [import_string(path) for path in paths] for name, paths in conf.hooks().items()}
    cron = cron_schedules(options.queue)
    queue = make_queue(options.queue)
    # What installed sub-apps add (tasks_app.metrics: attempt counts), found without importing them.
    add_ons = worker_add_ons(queue=queue, tasks=[spec.name for spec in registry.all()], interval=timers["worker_info"])
    upkeep = [chore for add_on in add_ons for chore in add_on.upkeep]
    if drain_outbox:
        grace = 0 if options.burst else outbox.DRAIN_GRACE_S
        drain = functools.partial(outbox.drain, grace=grace)
        upkeep.append(Upkeep("outbox", drain, outbox_interval, uses=("the database",), feeds=True))
    return Worker(
        queue,
        # Every task runs on every queue: a task's queue is only where it goes by default.
        [(spec.name, wrap(spec, executor)) for spec in registry.all()],
        executor=executor,
        cron=cron,
        cron_tz=zoneinfo.ZoneInfo(settings.TIME_ZONE or "UTC"),
        upkeep=upkeep,
        observers=[observe for add_on in add_ons for observe in add_on.observers],
        startup=hooks["startup"],
        shutdown=[*hooks["shutdown"], *(hook for add_on in add_ons for hook in add_on.shutdown)],
        before_process=hooks["before_process"],
        after_process=hooks["after_process"],
        concurrency=options.concurrency,
        timers=timers,
        # A bounded wait for work lets an idle slot notice a stop within a second.
        dequeue_timeout=1.0,
        burst=options.burst,
        max_burst_jobs=options.max_burst_jobs,
        shutdown_grace_period_s=conf.shutdown_grace_period(),
        metadata={
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": int(time.time()),
            "queues": [options.queue],
            "concurrency": options.concurrency,
            # So `manage.py enqueue` can tell when no live worker knows a task (added since it started).
            "tasks": [spec.name for spec in registry.all()],
        },
    )


# Seconds the start-up and health checks wait for the database: one that accepts connections and never
# answers would hold them for ever (no driver timeout is set by default).
DATABASE_CHECK_S = 10


def check_database(alias: str = DEFAULT_DB_ALIAS) -> None:
    """Open (and release) a connection to ``alias`` and check tasks_app's tables are there, within
    ``DATABASE_CHECK_S``; raises ``ServiceUnavailable`` naming the setting, or ``ImproperlyConfigured``
    naming the command to run."""
    checked = on_daemon_thread(functools.partial(_check_database, alias), "database-check")
    try:
        checked.result(DATABASE_CHECK_S)
    except TimeoutError:
        raise ServiceUnavailable(
            unreachable_database(alias, TimeoutError(f"no answer within {DATABASE_CHECK_S} s"))
        ) from None


def _check_database(alias: str) -> None:
    connection = connections[alias]
    try:
        connection.ensure_connection()
        tables = connection.introspection.table_names() if alias in outbox.outbox_databases() else None
    except DatabaseError as exc:
        raise ServiceUnavailable(unreachable_database(alias, exc)) from exc
    finally:
        connection.close()
    table = apps.get_model("tasks_app", "OutboxEntry")._meta.db_table
    if tables is not None and table not in tables:
        raise ImproperlyConfigured(
            f"The database {alias!r} ({describe_database(alias)}) has no {table} table: "
            "run `python manage.py migrate` first."
        )


def unreachable_database(alias: str, exc: BaseException, setting: str | None = None) -> str:
    """One line (no password) saying that database ``alias`` cannot be reached and what to do: start it,
    or create it when the server says it does not exist, or fix ``setting`` (default: its ``DATABASES`` entry)."""
    text = str(exc)
    if re.search(r'database "[^"]*" does not exist', text):
        act = "Create it, or"
    elif re.search(r'role "[^"]*" does not exist|password authentication failed|authentication failed', text):
        act = "Check its user name and password, or"
    elif re.search(r"resolve host|could not translate host|not known", text):
        act = "Check its host name, or"
    elif re.search(r"refused|could not connect|timeout expired|timed out", text):
        act = "Start it, or"
    else:
        act = "Check that it accepts this connection, or"
    setting = setting or conf.setting_name("DATABASES", alias)
    return f"Cannot reach the database {alias!r} ({describe_database(alias)}): {reason(exc)}. {act} fix {setting}."


def describe_database(alias: str) -> str:
    """Engine, host, port and name of a database, without its password."""
    params = connections[alias].settings_dict
    engine = params["ENGINE"].rsplit(".", 1)[-1]
    host = params.get("HOST") or "local socket"
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"{engine} {params.get('NAME')} at {host}{port}" if engine != "sqlite3" else f"sqlite3 {params.get('NAME')}"


def _install_signal_handlers(workers: list[Worker]) -> Callable[[], None]:
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
            if any("Redis" in worker.outages.since for worker in workers):  # no re-queue can be written
                logger.error(
                    "%s again: Redis is down, so in-flight jobs cannot be put back: they stay active until a "
                    "worker's sweep finds their heartbeat overdue. Exiting.",
                    signum.name,
                )
            else:
                logger.warning(
                    "%s again: re-queueing in-flight jobs and exiting. A task that does not stop when cancelled "
                    "(a sync task's thread; async code that ignores cancellation) keeps its job, heartbeated, "
                    "until it returns; then its outcome is written and the process ends (SIGKILL ends it sooner; "
                    "the job then runs again once its heartbeat lapses).",
                    signum.name,
                )
            for worker in workers:
                worker.force_stop()
        elif request == "kill":
            logger.warning(
                "%s again: the stop is already forced, and a task that does not stop when cancelled still runs. "
                "SIGKILL ends the process (its jobs then run again once their heartbeat lapses).",
                signum.name,
            )

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)

    def remove() -> None:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)

    return remove


OnReady = Callable[[list[Worker]], None]


async def run_workers(
    options: list[WorkerOptions], on_ready: OnReady | None = None, web: tuple[str, int] | None = None
) -> None:
    """Run a worker per queue until they stop (burst done, or a signal). Raises ``ServiceUnavailable``
    before starting if Redis or the database cannot be reached."""
    # Any worker drains the outbox, whatever its queues: the first one of each process does.
    workers = [build_worker(option, drain_outbox=index == 0) for index, option in enumerate(options)]
    # --burst workers of one process end together (engine/burst.py): one group for all of them, in place
    # of each worker's own.
    group = BurstGroup(workers) if any(worker.burst for worker in workers) else None
    if group is not None:
        for worker in workers:
            worker.burst_group = group
    remove_handlers = lambda: None  # noqa: E731
    web_runner = None
    try:
        for worker in workers:
            await worker.queue.connect()
            adopt_queue(worker.queue)  # jobs that enqueue reuse the worker's connection pool
            await redis_facts.require(worker.queue)  # reachable; Sentinel, TLS files, wait_replicas, ACL
        await sync_to_async(check_database, thread_sensitive=True)()
        if web is not None:
            web_runner = await monitor.serve([worker.queue for worker in workers], *web)
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
        if group is not None:
            await group.close()
        await disconnect_all()
        # The async ORM's connections live in its own thread: close them there.
        await sync_to_async(connections.close_all, thread_sensitive=True)()


def run(options: list[WorkerOptions], on_ready: OnReady | None = None, web: tuple[str, int] | None = None) -> None:
    """Run the workers on the event loop ``SAQ["EVENT_LOOP"]`` names (``conf.event_loop()``)."""
    if conf.event_loop() == "uvloop":
        import uvloop

        uvloop.run(run_workers(options, on_ready, web))
    else:
        asyncio.run(run_workers(options, on_ready, web))
