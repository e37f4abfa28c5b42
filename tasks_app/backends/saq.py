"""A ``django.tasks`` backend that runs Tasks on SAQ, through ``runworker``.

    TASKS = {
        "default": {
            "BACKEND": "tasks_app.backends.SAQBackend",
            "QUEUES": ["default"],                      # each must be a queue in SAQ["QUEUES"]
            "OPTIONS": {"retries": 0, "timeout": 60},  # SAQ job options; also "enqueue_on_commit"
        }
    }

The TaskResult id is the SAQ job key; results are read back from Redis by any process.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.tasks import DEFAULT_TASK_QUEUE_NAME, Task, TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from saq.job import Job

from .. import conf
from ..argument_types import argument_types
from ..checks import unknown_keys
from ..engine.clock import job_time
from ..enqueueing import diversion, outbox
from ..enqueueing.api import submit, submit_sync
from ..enqueueing.building import BuiltJob, build_job
from ..enqueueing.connections import background, get_queue
from . import runner

# OPTIONS keys: SAQ job options (as in @task and SAQ["DEFAULT_JOB_OPTIONS"]), plus this backend's own.
BACKEND_OPTIONS = ("enqueue_on_commit",)


class SAQBackend(BaseTaskBackend):
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True  # Task.priority (-100..100): higher runs first within a queue (engine/priorities.py)

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.enqueue_on_commit = bool(self.options.get("enqueue_on_commit", False))
        self.job_options = {k: v for k, v in self.options.items() if k in conf.JOB_OPTIONS}

    # --- validation ---------------------------------------------------------------------------------

    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        configured = conf.queues()
        if task.queue_name not in configured:
            raise InvalidTask(
                f"Queue {task.queue_name!r} is not a SAQ queue; configured queues are {sorted(configured)}. "
                f'Add it to SAQ["QUEUES"].'
            )

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = []
        where = f'TASKS["{self.alias}"]'
        try:
            configured = conf.queues()
        except ImproperlyConfigured:
            return []  # tasks_app.E001 already reports the broken queue settings
        for name in sorted(self.queues - set(configured)):
            errors.append(
                checks.Error(
                    f'{where}["QUEUES"] names {name!r}, which is not a queue in SAQ["QUEUES"].',
                    hint=f"Configured SAQ queues: {', '.join(configured)}.",
                    id="tasks_app.E020",
                )
            )
        errors += unknown_keys(f'{where}["OPTIONS"]', self.options, (*conf.JOB_OPTIONS, *BACKEND_OPTIONS), 21)
        return errors

    # --- enqueueing ---------------------------------------------------------------------------------

    def _build(self, task: Task, args: Any, kwargs: Any) -> tuple[BuiltJob, TaskResult]:
        self.validate_task(task)
        if diversion.current() is not None:
            # Its job would run inline and fail (the runner stores its bookkeeping in Redis), and its
            # results could not be read back: say what to use instead.
            raise ImproperlyConfigured(
                f"{task.module_path}.enqueue(): SAQBackend runs Tasks in a worker and reads their results from "
                "Redis; tasks_app.testing's capture_jobs() and SAQ['MODE'] = 'immediate' do not run them. In "
                'tests, set TASKS to Django\'s own {"default": {"BACKEND": '
                '"django.tasks.backends.immediate.ImmediateBackend"}} (or DummyBackend).'
            )
        # Stored as JSON, so normalise now: the returned result then equals what get_result reads back.
        args, kwargs = runner.as_stored(args), runner.as_stored(kwargs)
        try:
            bound = inspect.signature(task.func).bind(*([None] if task.takes_context else []), *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{task.module_path}(): {exc}.") from None
        argument_types(task.func, 1 if task.takes_context else 0).check(task.module_path, dict(bound.arguments))
        queue = task.queue_name or DEFAULT_TASK_QUEUE_NAME
        built = build_job(
            runner.RUNNER,
            {"task_path": task.module_path, "task_args": args, "task_kwargs": kwargs, "backend_alias": self.alias},
            queue=queue,
            # SAQ schedules in whole seconds: round up, so the task never runs before run_after.
            at=math.ceil(task.run_after.timestamp()) if task.run_after else None,
            **({**self.job_options, "priority": task.priority} if task.priority else self.job_options),
        )
        if task.run_after is not None:
            runner.bookkeeping(built.job)["run_after"] = task.run_after.isoformat()
        result = runner.SAQTaskResult(
            task=task,
            id=built.job.key,
            status=TaskResultStatus.READY,
            enqueued_at=None,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        return built, result

    def _enqueued(self, result: TaskResult, job: Job) -> TaskResult:
        object.__setattr__(result, "enqueued_at", job_time(job.queued))
        return result

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        built, result = self._build(task, args, kwargs)
        if self.enqueue_on_commit:
            return self._enqueue_on_commit(built, result)
        _refuse_in_event_loop("task.enqueue()", "await task.aenqueue()")
        self._enqueued(result, submit_sync(built))
        task_enqueued.send(type(self), task_result=result)
        return result

    async def aenqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        built, result = self._build(task, args, kwargs)
        if self.enqueue_on_commit:
            # The outbox row is written with the sync ORM, in the caller's transaction.
            from asgiref.sync import sync_to_async

            return await sync_to_async(self._enqueue_on_commit)(built, result)
        self._enqueued(result, await submit(built))
        await task_enqueued.asend(type(self), task_result=result)
        return result

    def _enqueue_on_commit(self, built: BuiltJob, result: TaskResult) -> TaskResult:
        """Durable: an outbox row in this transaction; Redis gets the job on commit (or a worker's drain
        delivers it later). The result id is known now; ``enqueued_at`` is set once Redis has it."""
        outbox.on_commit(built, then=lambda: task_enqueued.send(type(self), task_result=result))
        return result

    # --- results ------------------------------------------------------------------------------------

    def _queue_names(self) -> list[str]:
        configured = list(conf.queues())
        return [name for name in configured if name in self.queues] or configured

    async def aget_result(self, result_id: str) -> TaskResult:
        for name in self._queue_names():
            job = await get_queue(name).job(str(result_id))
            if job is not None and runner.is_runner(job.function):
                return runner.result_from_job(job)
        raise TaskResultDoesNotExist(result_id)

    def get_result(self, result_id: str) -> TaskResult:
        _refuse_in_event_loop("get_result()", "await aget_result()")
        return background.run(self.aget_result(result_id))


def _refuse_in_event_loop(call: str, instead: str) -> None:
    """Waiting on Redis from inside an event loop would block it: name the async twin instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{call} blocks, and this thread runs an event loop; use {instead} here.")
