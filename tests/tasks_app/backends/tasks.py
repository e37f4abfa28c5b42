"""django.tasks Tasks for the SAQ backend's tests; the first ones mirror Django's own tests/tasks/tasks.py."""

import asyncio
import os
import time

from django.contrib.auth import get_user_model
from django.dispatch import receiver
from django.tasks import TaskContext, task
from django.tasks.signals import task_finished, task_started


@task()
def noop_task(*args, **kwargs) -> None:
    return None


@task()
async def noop_task_async(*args, **kwargs) -> None:
    return None


@task()
def calculate_meaning_of_life() -> int:
    return 42


@task()
def add(a: int, b: int) -> int:
    return a + b


@task()
def failing_task_value_error() -> None:
    raise ValueError("This task failed due to ValueError")


@task()
def failing_task_system_exit() -> None:
    raise SystemExit("This task failed due to SystemExit")


@task()
def complex_exception() -> None:
    raise ValueError(ValueError("This task failed"))


@task()
def returns_int_keys() -> dict:
    return {1: "one", "pair": (1, 2)}  # stored as JSON: {"1": "one", "pair": [1, 2]}


@task()
def complex_return_value():
    return {"value": object()}  # not JSON


@task(takes_context=True)
def get_task_id(context) -> str:
    return context.task_result.id


@task(takes_context=True)
def check_context(context, attempt: int) -> None:
    assert isinstance(context, TaskContext)
    assert context.attempt == attempt


@task(takes_context=True)
def fails_on_first_attempt(context) -> int:
    if context.attempt == 1:
        raise RuntimeError("first attempt fails")
    return context.attempt


@task()
async def sleep_for(seconds: float) -> None:
    await asyncio.sleep(seconds)


@task()
def count_users_sync() -> int:
    return get_user_model().objects.count()


@task()
async def count_users_async() -> int:
    return await get_user_model().objects.acount()


@task(takes_context=True)
def reports_progress_then_fails(context, message: str) -> None:
    from tasks_app import report_progress

    report_progress(context, 0.25, message)
    raise ValueError("after a quarter")


@task(takes_context=True)
async def reports_progress_async(context) -> str:
    from tasks_app import areport_progress

    return str(await areport_progress(context, 0.5, "half"))


@task()
async def awaits_a_cancelled_task() -> None:
    """Its own code meets CancelledError: it awaits a helper that something else cancelled."""
    helper = asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(0)
    helper.cancel()
    await helper


@task()
def until_file(path: str, text: str) -> str:
    """Runs (in a worker's thread) until ``path`` exists: a test's switch."""
    from tests.sampleapp.models import Note

    Note.objects.create(text=f"{text} started")
    while not os.path.exists(path):
        time.sleep(0.02)
    return text


@receiver(task_finished)
def _note_until_file_finished(sender, task_result, **kwargs) -> None:
    # In the worker process that ran it: what it sent for until_file, for a test to read.
    if task_result.task.name == "until_file":
        from tests.sampleapp.models import Note

        Note.objects.create(text=f"task_finished {task_result.id} {task_result.status}")


@task()
def slow_to_start() -> None:
    """Its ``task_started`` receiver (below) takes 3 s: longer than the test's 1 s timeout."""


@receiver(task_started)
async def _slow_start(sender, task_result, **kwargs) -> None:
    if task_result.task.name == "slow_to_start":
        await asyncio.sleep(3)


@task()
def returns_then_its_receiver_waits(path: str, text: str) -> str:
    """Returns at once; its ``task_finished`` receiver (below) runs until ``path`` exists."""
    return text


@task()
def fails_then_its_receiver_waits(path: str, text: str) -> str:
    """Fails at once; its ``task_finished`` receiver (below) runs until ``path`` exists."""
    raise ValueError(text)


@receiver(task_finished)
def _wait_in_receiver(sender, task_result, **kwargs) -> None:
    if task_result.task.name in ("returns_then_its_receiver_waits", "fails_then_its_receiver_waits"):
        from tests.sampleapp.models import Note

        path, text = task_result.args
        Note.objects.create(text=f"{text} receiving")
        while not os.path.exists(path):
            time.sleep(0.02)
        Note.objects.create(text=f"{text} received {task_result.status}")
