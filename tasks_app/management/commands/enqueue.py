"""``python manage.py enqueue TASK [NAME=VALUE ...]``: enqueue a job from the shell, cron or CI."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import datetime

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from redis.exceptions import RedisError
from saq.job import Status

from tasks_app import operations as ops
from tasks_app import redis_facts
from tasks_app.argument_types import MAX_DEPTH, ArgumentTypes
from tasks_app.display import show_time
from tasks_app.enqueueing.building import build_job
from tasks_app.enqueueing.connections import disconnect_all
from tasks_app.exceptions import TaskArgumentError, TaskNotFound
from tasks_app.management.queues import named_queues
from tasks_app.registry import registry

EXIT_FAILED, EXIT_WAIT_TIMEOUT = 1, 3


def parse_assignments(pairs: list[str], types: ArgumentTypes | None = None) -> dict:
    """NAME=VALUE pairs. VALUE is converted to the parameter's annotated type where the text says so
    unambiguously (``ArgumentTypes.from_text``: 42 for an int, "42" for a str); for a parameter with
    no annotation, it is JSON where it parses (42, true, [1,2], {"a":1}), else a string."""
    kwargs = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.isidentifier():
            raise CommandError(f"Argument {pair!r} is not NAME=VALUE (for example feed_url=https://...).")
        if name in kwargs:
            raise CommandError(f"Argument {name!r} is given twice.")
        try:
            kwargs[name] = (types or ArgumentTypes(_no_annotations, 0)).from_text(name, raw)
        except TaskArgumentError as exc:
            raise CommandError(str(exc)) from None
    return kwargs


def _no_annotations(**kwargs): ...


def parse_kwargs_json(text: str | None) -> dict:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        example = '--kwargs \'{"feed_url": "https://..."}\''
        raise CommandError(f"--kwargs is not valid JSON: {exc}. Example: {example}") from None
    except RecursionError:  # thousands of nested brackets: refused like any nesting past MAX_DEPTH
        raise CommandError(f"--kwargs nests more than {MAX_DEPTH} levels deep.") from None
    if not isinstance(value, dict):
        raise CommandError(f"--kwargs must be a JSON object, not {type(value).__name__}.")
    return value


def parse_seconds(flag: str, value: str | float | None) -> float | None:
    """The number of seconds given to ``flag``: a finite number (not nan or inf), else a CommandError
    naming the flag, which exits 1 like any other bad input (argparse's own errors exit 2)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise CommandError(f"{flag} {value!r} is not a number of seconds.") from None
    if not math.isfinite(seconds):
        raise CommandError(f"{flag} {value!r} is not a finite number of seconds.")
    return seconds


def describe_schedule(scheduled: int) -> str:
    """`` at <local time>`` for a job due later, or "" for one due now; raises ``CommandError`` for a
    time that cannot be shown (beyond year 9999), so such a job is refused rather than enqueued."""
    if not scheduled:
        return ""
    try:
        return f" at {show_time(scheduled)}"
    except (ValueError, OverflowError, OSError):
        raise CommandError(
            f"The job would be due at {scheduled} epoch seconds, past the year 9999; use a shorter --delay or an "
            "earlier --at."
        ) from None


def parse_at(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--at {text!r} is not an ISO 8601 date-time, e.g. 2026-12-01T02:00:00+00:00.") from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = (
        "Enqueue a task. Arguments are NAME=VALUE pairs, converted to each parameter's annotated type "
        "(unannotated: JSON where they parse, else strings)."
    )

    requires_system_checks = []  # run in handle(), after the queue's settings

    def add_arguments(self, parser) -> None:
        parser.add_argument("task", help=f"Registered task name: {', '.join(_task_names()) or 'none registered'}.")
        parser.add_argument("arguments", nargs="*", default=[], metavar="NAME=VALUE")  # default: not "required"
        parser.add_argument("--kwargs", help="Task arguments as one JSON object.")
        parser.add_argument("--queue", help="Queue name (default: the task's queue).")
        parser.add_argument("--timeout", type=int, help="Seconds before the job is cancelled.")
        parser.add_argument("--retries", type=int, help="Retries after the first attempt.")
        when = parser.add_mutually_exclusive_group()
        when.add_argument("--delay", metavar="SECONDS", help="Run after this many seconds.")
        when.add_argument("--at", help="Run at this ISO 8601 date-time (naive means TIME_ZONE).")
        parser.add_argument("--key", help="Job key; a job with this key that is still pending is not duplicated.")
        parser.add_argument("--skip-checks", action="store_true", help="Skip system checks.")
        parser.add_argument("--wait", action="store_true", help="Wait for the job and print its result as JSON.")
        parser.add_argument(
            "--wait-timeout", metavar="SECONDS", default=300, help="Seconds --wait waits (default 300)."
        )

    def handle(self, *args, **options) -> None:
        # The queue's settings first, as runworker does: a bad queue URL is one line and exit 2, an unknown
        # --queue exit 1, each worded as runworker's, before the system checks report the same as a block.
        named_queues(None if options["queue"] is None else [options["queue"]])  # --queue '' is no queue's name
        if not options["skip_checks"]:
            self.check(display_num_errors=False)
        try:
            types = registry.get(options["task"]).argument_types
        except TaskNotFound as exc:
            raise CommandError(str(exc)) from None
        kwargs = parse_kwargs_json(options["kwargs"])
        for name, value in parse_assignments(options["arguments"], types).items():
            if name in kwargs:
                raise CommandError(f"Argument {name!r} is given both as NAME=VALUE and in --kwargs.")
            kwargs[name] = value
        for flag in ("delay", "wait_timeout"):
            options[flag] = parse_seconds(f"--{flag.replace('_', '-')}", options[flag])
        for flag in ("timeout", "retries", "delay", "wait_timeout"):
            if options[flag] is not None and options[flag] < 0:
                raise CommandError(f"--{flag.replace('_', '-')} must not be negative.")
        at = parse_at(options["at"]) if options["at"] else None
        job_options = {k: options[k] for k in ("timeout", "retries") if options[k] is not None}
        try:
            built = build_job(
                options["task"], kwargs, queue=options["queue"], key=options["key"], delay=options["delay"], at=at,
                **job_options,
            )  # fmt: skip
        except (TaskNotFound, TaskArgumentError) as exc:
            raise CommandError(str(exc)) from None
        except ImproperlyConfigured as exc:  # a setting: exit 2, as for a URL refused when the settings load
            raise CommandError(str(exc), returncode=2) from None
        # Worked out before submitting: once the job is enqueued, nothing may fail on its way out.
        when = describe_schedule(built.job.scheduled)
        try:
            job = asyncio.run(self._submit(built.job, built.queue, options, when))
        except (RedisError, OSError) as exc:
            raise CommandError(redis_facts.describe(built.queue, exc), returncode=2) from None
        if options["wait"]:
            self._report(job, options["wait_timeout"], verbose=options["verbosity"] >= 2 or options["traceback"])

    async def _submit(self, job, queue_name: str, options: dict, when: str):
        try:
            pending, state = await ops.asubmit(job, queue_name, short_timeouts=False)
            if state == "exists":
                self.stdout.write(f"{pending.key} {pending.status.value} (already pending; not enqueued again)")
            elif state == "deferred":
                self.stdout.write(f"{job.key} queued once the job it replaces has finished aborting")
            else:
                self.stdout.write(f"{job.key} {job.status.value}{when}")
            warning = await _unknown_to_live_workers(queue_name, job.function)
            if warning:
                self.stderr.write(self.style.WARNING(warning))
            if options["wait"]:
                try:
                    # SAQ waits for ever for until_complete=0: --wait-timeout 0 looks once, now.
                    await pending.refresh(until_complete=options["wait_timeout"] or None)
                except TimeoutError:
                    await pending.refresh()
            return pending
        finally:
            await disconnect_all()

    def _report(self, job, wait_timeout: float, verbose: bool) -> None:
        if job.status == Status.COMPLETE:
            self.stdout.write(json.dumps(job.result, indent=2, default=str))
            return
        if job.status in (Status.FAILED, Status.ABORTED):
            lines = [line.strip() for line in (job.error or "").splitlines() if line.strip()]
            if verbose:
                self.stderr.write(job.error or "")  # the job's traceback: what its dashboard page shows
            elif len(lines) > 1:
                lines[-1] += " (-v 2 prints the job's traceback; so does its page in the dashboard)"
            said = f": {lines[-1]}" if lines else "."
            raise CommandError(f"Job {job.key} {job.status.value}{said}", returncode=EXIT_FAILED)
        raise CommandError(
            f"Job {job.key} is still {job.status.value} after {wait_timeout:.0f}s (--wait-timeout). "
            "Is a worker running? Start one with: python manage.py runworker",
            returncode=EXIT_WAIT_TIMEOUT,
        )


def _task_names() -> list[str]:
    from tasks_app.backends.runner import is_runner

    return [spec.name for spec in registry.all() if not is_runner(spec.name)]


async def _unknown_to_live_workers(queue: str, task_name: str) -> str | None:
    """A warning when no live worker of ``queue`` would run ``task_name``, else None.

    Workers publish their task names in their info (``runner.build_worker``); a worker whose info
    lists none (an older version) counts as knowing every task.
    """
    workers = [info.get("metadata") or {} for _, info, _ in await ops.alive_workers(queue, short_timeouts=False)]
    if not workers:
        return f"No worker of queue {queue!r} is running: the job waits until one starts (python manage.py runworker)."
    if all("tasks" in meta and task_name not in meta["tasks"] for meta in workers):
        return (
            f"No live worker of queue {queue!r} has task {task_name!r} registered (it was added since they "
            f"started): restart the workers of queue {queue!r} so they load it. Until then, a worker without it "
            "that takes the job fails the attempt, and the job fails once its retries are used up."
        )
    return None
