"""``python manage.py runworker``: run SAQ workers inside Django."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import socket
import sys
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from tasks_app import conf, embedded_redis, queue_urls
from tasks_app.display import show_time
from tasks_app.engine.cron import next_run
from tasks_app.exceptions import ServiceUnavailable, UnsafeBind, WorkersGaveUp, reason
from tasks_app.management.queues import named_queues
from tasks_app.process import health
from tasks_app.process.monitor import check_bind
from tasks_app.process.runner import WorkerOptions, check_database, run
from tasks_app.process.supervisor import WORKERS_PER_CPU, Supervisor, child_command, max_workers
from tasks_app.redaction import redact_url
from tasks_app.registry import registry

LOG_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


class Command(BaseCommand):
    help = "Run a SAQ worker for this Django project's tasks."
    requires_system_checks = []  # checked in handle(), but not for --check: a probe must be cheap

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--queue", action="append", dest="queues", metavar="NAME", help="Queue to work (repeatable). Default: all."
        )
        parser.add_argument("--concurrency", type=int, help="Jobs run at once per queue; overrides settings.")
        parser.add_argument("--workers", type=int, default=1, help="Number of supervised worker processes.")
        parser.add_argument("--burst", action="store_true", help="Process what is queued, then exit 0.")
        parser.add_argument(
            "--max-jobs",
            type=int,
            help="With --burst: stop after this many jobs, per queue in each worker process (see --workers).",
        )
        parser.add_argument("--web", action="store_true", help="Serve SAQ's monitor beside the worker.")
        parser.add_argument("--host", default="127.0.0.1", help="Monitor address (default 127.0.0.1).")
        parser.add_argument("--port", type=_port, default=8080, help="Monitor port, 1-65535 (default 8080).")
        parser.add_argument(
            "--check", action="store_true", help="Health check: exit 0 if every queue has a live worker."
        )
        parser.add_argument("--skip-checks", action="store_true", help="Skip system checks.")
        parser.add_argument(
            "--reload",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="Restart the worker cleanly on code changes (default: on when DEBUG).",
        )

    def handle(self, *args, **options) -> None:
        self.verbosity = options["verbosity"]
        self._configure_logging(options["verbosity"])
        queues = named_queues(options["queues"])
        self._validate(options)  # with --check too: a probe given a flag it cannot honour says so
        if options["check"]:
            return self._health_check(queues)
        if not options["skip_checks"]:
            self.check(display_num_errors=False)
        reload = options["reload"] if options["reload"] is not None else settings.DEBUG
        reload = reload and not options["burst"]
        if options["workers"] > 1 or reload:
            return self._supervise(queues, options, reload)
        self._run(queues, options)

    # --- running -------------------------------------------------------------

    def _run(self, queues: list[str], options: dict) -> None:
        worker_options = [
            WorkerOptions(
                queue=name,
                concurrency=options["concurrency"] or conf.queue_config(name).concurrency,
                burst=options["burst"],
                max_burst_jobs=options["max_jobs"],
            )
            for name in queues
        ]
        web = self._web = (options["host"], options["port"]) if options["web"] else None
        self._workers = []  # the running workers, once started (``_ready``)
        try:
            run(worker_options, on_ready=self._ready, web=web)
        except (ServiceUnavailable, ImproperlyConfigured) as exc:  # Redis or a setting: exit 2, as at start-up
            raise CommandError(str(exc), returncode=2) from None
        except UnsafeBind as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            if web is not None and exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
                raise CommandError(_port_unavailable(*web, exc)) from None
            raise CommandError(f"Cannot start the worker: {exc}") from None
        unwritten = sum(worker.unwritten for worker in self._workers)
        if unwritten:  # a stop that left jobs ACTIVE is not a clean one: a service manager should know
            raise CommandError(
                f"{unwritten} job(s) were left active: Redis was down as the worker stopped, so their outcome, or "
                "their return to the queue, was not written (the log above names each). Those jobs stay active "
                "until a worker's sweep finds their heartbeat overdue, then run again.",
                returncode=1,
            )

    def _supervise(self, queues: list[str], options: dict, reload: bool) -> None:
        # Fail fast, once, with the single-process message, rather than restarting children that cannot run.
        try:
            asyncio.run(_preflight(queues))
            check_database()
        except (ServiceUnavailable, ImproperlyConfigured) as exc:
            raise CommandError(str(exc), returncode=2) from None
        if options["web"]:  # else the child serving it would fail, and be restarted, again and again
            host, port = options["host"], options["port"]
            try:
                socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET).close()
            except OSError as exc:
                raise CommandError(_port_unavailable(host, port, exc)) from None
        argv = [*child_command(), "runworker", *_child_options(queues, options)]
        web = ["--web", "--host", options["host"], "--port", str(options["port"])] if options["web"] else []
        # Only the first child serves the monitor: one port, one server.
        argvs = [argv + (web if index == 0 else []) for index in range(options["workers"])]
        if reload:
            self.stdout.write("Watching for code changes: a change restarts the worker(s) cleanly.")
        if options["workers"] > 1:
            self.stdout.write(f"Supervising {options['workers']} worker processes (SIGTERM stops them all)")
        try:
            code = Supervisor(argvs, conf.shutdown_grace_period(), reload=reload).run(burst=options["burst"])
        except WorkersGaveUp as exc:
            raise CommandError(str(exc), returncode=exc.code) from None
        if code:
            raise CommandError("A worker process did not exit cleanly.", returncode=code)

    def _health_check(self, queues: list[str]) -> None:
        results = asyncio.run(health.probe(queues))
        database = health.database_error()
        for result in results:
            (self.stderr if result.error or not result.workers else self.stdout).write(health.describe(result))
        (self.stderr if database else self.stdout).write(health.describe_db(database))
        code = health.exit_code(results, database)
        if code:
            sys.exit(code)

    # --- validation and output -----------------------------------------------

    def _validate(self, options: dict) -> None:
        if options["concurrency"] is not None and options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1.")
        if options["concurrency"] is not None and (
            problem := queue_urls.too_concurrent("--concurrency", options["concurrency"])
        ):
            raise CommandError(problem)
        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1.")
        if options["workers"] > (most := max_workers()):
            raise CommandError(
                f"--workers must be at most {most} here ({WORKERS_PER_CPU} per CPU: more processes only share the "
                "same CPUs). For more jobs at once, raise each process's --concurrency."
            )
        if options["max_jobs"] is not None and not options["burst"]:
            raise CommandError("--max-jobs only makes sense with --burst.")
        if options["max_jobs"] is not None and options["max_jobs"] < 1:
            raise CommandError("--max-jobs must be at least 1.")
        if options["web"]:
            try:
                check_bind(options["host"])
            except UnsafeBind as exc:
                raise CommandError(str(exc)) from None

    def _configure_logging(self, verbosity: int) -> None:
        level = LOG_LEVELS.get(verbosity, logging.DEBUG)
        ours = logging.getLogger("tasks_app")
        ours.setLevel(level)
        if not ours.hasHandlers():
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
            ours.addHandler(handler)
        # tasks_app logs one line per job; SAQ's own per-job lines only at -v 3.
        logging.getLogger("saq").setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)

    def _ready(self, workers) -> None:
        self._workers = workers  # read once they have stopped: outcomes left unwritten
        self._banner(workers)

    def _banner(self, workers) -> None:
        if self.verbosity < 1:
            return
        write = self.stdout.write
        write(self.style.SUCCESS(f"SAQ worker, pid {os.getpid()}, event loop {conf.event_loop()}"))
        for worker in workers:
            url = conf.queue_config(worker.queue.name).url
            where = "embedded Redis (development)" if embedded_redis.serves(conf.embedded_redis(), url) else ""
            write(f"  queue {worker.queue.name!r} at {redact_url(url)}{f' ({where})' if where else ''}, "
                  f"concurrency {worker.concurrency}")  # fmt: skip
        write("  tasks:")
        for spec in registry.all():
            options = spec.job_options()
            write(
                f"    {spec.name}  [{spec.queue}] timeout={options['timeout']}s retries={options['retries']}"
                f"  ({spec.path})"
            )
        crons = [entry for worker in workers for entry in worker.cron_schedules]
        if crons and not workers[0].burst:
            write(f"  cron ({settings.TIME_ZONE}):")
            moment = datetime.now(UTC)
            for entry in crons:
                upcoming = next_run(entry.expression, workers[0].cron_tz, moment).astimezone(workers[0].cron_tz)
                write(f"    {entry.expression:<15} {entry.name}  next {show_time(upcoming)}")
        if getattr(self, "_web", None):
            host, port = self._web
            write(f"  monitor (SAQ's web UI) at http://{f'[{host}]' if ':' in host else host}:{port}/")
        mode = "burst: exits when the queue is empty" if workers[0].burst else "SIGTERM/SIGINT for a clean stop"
        write(f"  {mode}; grace period {conf.shutdown_grace_period():.0f}s")


def _child_options(queues: list[str], options: dict) -> list[str]:
    """The options each supervised worker process runs with: this command's, less what only the
    supervisor does (reloading, system checks, --workers, --web: only the first child serves it)."""
    argv = ["--no-reload", "--skip-checks", "-v", str(options["verbosity"])]
    for name in queues:
        argv += ["--queue", name]
    if options["concurrency"]:
        argv += ["--concurrency", str(options["concurrency"])]
    if options["burst"]:
        argv.append("--burst")
    if options["max_jobs"] is not None:
        argv += ["--max-jobs", str(options["max_jobs"])]
    for name in ("settings", "pythonpath"):
        if options.get(name):
            argv += [f"--{name}", options[name]]
    for name in ("traceback", "no_color", "force_color"):
        if options.get(name):
            argv.append(f"--{name.replace('_', '-')}")
    return argv


async def _preflight(queues: list[str]) -> None:
    from tasks_app import redis_facts
    from tasks_app.enqueueing.connections import make_queue

    for name in queues:
        queue = make_queue(name)
        try:
            await redis_facts.require(queue)  # reachable; Sentinel, TLS files, wait_replicas, ACL
        finally:
            await queue.redis.aclose()


def _port_unavailable(host: str, port: int, exc: OSError) -> str:
    return (
        f"Cannot serve SAQ's monitor on {host}:{port}: {reason(exc)}. Choose another --port (or --host), "
        "or stop what listens there."
    )


def _port(text: str) -> int:
    """``--port``: a TCP port a browser can be pointed at (0 would bind one at random, unannounced)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number: give 1-65535") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number: give 1-65535")
    return port
