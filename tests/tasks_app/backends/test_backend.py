"""SAQBackend end to end: enqueue, a real worker (runworker --burst) on real Redis, results read back.

Mirrors Django's tests/tasks/test_immediate_backend.py and test_dummy_backend.py where they apply
to a real queue: enqueue gives a READY result (as DummyBackend), the worker makes it SUCCESSFUL or
FAILED (as ImmediateBackend), and get_result reads it back (as supports_get_result promises).
"""

import logging
from datetime import datetime

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.tasks import TaskResultStatus, default_task_backend, task_backends
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist, TaskResultMismatch
from django.test import override_settings

from tasks_app import enqueue
from tasks_app.backends import SAQBackend
from tests.queue_state import count, job_keys, listed, stored

from . import tasks as test_tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_using_correct_backend():
    assert isinstance(task_backends["default"], SAQBackend)
    assert default_task_backend.alias == "default"
    assert default_task_backend.options == {"retries": 0}


def test_capabilities_are_truthful():
    assert default_task_backend.supports_defer is True
    assert default_task_backend.supports_async_task is True
    assert default_task_backend.supports_get_result is True
    assert default_task_backend.supports_priority is True


def test_a_tasks_priority_reaches_the_job_and_orders_the_queue(redis_client, work):
    low = test_tasks.noop_task.using(priority=-20).enqueue()
    plain = test_tasks.noop_task.enqueue()
    high = test_tasks.noop_task.using(priority=100).enqueue()
    assert [stored(result.id).priority for result in (low, plain, high)] == [-20, 0, 100]
    assert count("queued") == 3
    work()
    for result in (low, plain, high):
        result.refresh()
    # taken highest first, one take after another, so started (on Redis's clock) in that order
    assert high.started_at <= plain.started_at <= low.started_at


def test_enqueue_then_work(redis_client, work):
    for task in [test_tasks.noop_task, test_tasks.noop_task_async]:
        result = task.enqueue(1, two=3)

        assert result.status == TaskResultStatus.READY
        assert result.is_finished is False
        assert result.enqueued_at is not None
        assert result.started_at is None
        assert result.last_attempted_at is None
        assert result.finished_at is None
        with pytest.raises(ValueError, match="Task has not finished yet"):
            result.return_value  # noqa: B018
        assert result.task == task
        assert result.args == [1]
        assert result.kwargs == {"two": 3}
        assert result.attempts == 0
        # It is a real SAQ job of the runner task, on the queue's list in Redis.
        assert listed(result.id, "queued") and count("queued") == 1
        assert default_task_backend.get_result(result.id) == result

        work()

        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.is_finished is True
        assert result.started_at >= result.enqueued_at
        assert result.last_attempted_at == result.started_at
        assert result.finished_at >= result.started_at
        assert result.return_value is None
        assert result.attempts == 1
        assert len(result.worker_ids[0]) > 0
        assert result.errors == []


def test_aenqueue_and_aget_result(work):
    async def aenqueue_it():
        return await test_tasks.calculate_meaning_of_life.aenqueue()

    result = async_to_sync(aenqueue_it)()
    assert result.status == TaskResultStatus.READY
    assert result.args == [] and result.kwargs == {}
    assert async_to_sync(default_task_backend.aget_result)(result.id) == result

    work()

    async def refreshed():
        await result.arefresh()
        return result

    assert async_to_sync(refreshed)().return_value == 42
    assert async_to_sync(test_tasks.calculate_meaning_of_life.aget_result)(result.id).return_value == 42


def test_result(work):
    result = default_task_backend.enqueue(test_tasks.calculate_meaning_of_life, [], {})
    work()
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 42


@pytest.mark.parametrize(
    ("task", "exception", "message"),
    [
        (test_tasks.failing_task_value_error, ValueError, "This task failed due to ValueError"),
        (test_tasks.failing_task_system_exit, SystemExit, "This task failed due to SystemExit"),
    ],
)
def test_catches_exception(task, exception, message, work, caplog):
    result = task.enqueue()
    with caplog.at_level(logging.ERROR, logger="django.tasks"):
        work()

    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert result.is_finished is True
    assert result.started_at >= result.enqueued_at
    assert result.finished_at >= result.started_at
    assert result.errors[0].exception_class is exception
    assert result.errors[0].traceback.endswith(f"{exception.__name__}: {message}\n")
    assert result.attempts == 1
    failed = [r for r in caplog.records if r.name == "django.tasks" and r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failed] == [f"Task id={result.id} path={task.module_path} state=FAILED"]


def test_complex_exception(work):
    result = test_tasks.complex_exception.enqueue()
    work()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result._return_value is None
    assert result.errors[0].exception_class is ValueError
    assert 'ValueError(ValueError("This task failed"))' in result.errors[0].traceback


def test_complex_return_value(work):
    result = test_tasks.complex_return_value.enqueue()
    work()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result._return_value is None
    assert result.errors[0].exception_class is TypeError
    assert "Unsupported type" in result.errors[0].traceback


def test_takes_context(work):
    result = test_tasks.get_task_id.enqueue()
    checked = test_tasks.check_context.enqueue(1)
    work()
    result.refresh()
    checked.refresh()
    assert result.return_value == result.id
    assert checked.status == TaskResultStatus.SUCCESSFUL


def test_database_access_from_sync_and_async_tasks(work):
    get_user_model().objects.create_user("one")
    get_user_model().objects.create_user("two")
    sync_result = test_tasks.count_users_sync.enqueue()
    async_result = test_tasks.count_users_async.enqueue()
    work()
    sync_result.refresh()
    async_result.refresh()
    assert (sync_result.return_value, async_result.return_value) == (2, 2)


def test_get_missing_result():
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("123")
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(default_task_backend.aget_result)("123")


def test_a_plain_saq_job_is_not_a_task_result(redis_client):
    # A job of an ordinary @task, not of the django.tasks runner: not a django.tasks result.
    other = enqueue("noop")
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(other.key)


def test_get_incorrect_result():
    result = default_task_backend.enqueue(test_tasks.noop_task_async, (), {})
    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        test_tasks.noop_task.get_result(result.id)


def test_enqueue_with_invalid_argument(redis_client):
    with pytest.raises(TypeError, match="Unsupported type"):
        test_tasks.noop_task.enqueue(datetime.now())
    with pytest.raises(TypeError, match=r"tests\.tasks_app\.backends\.tasks\.add\(\): missing a required argument"):
        test_tasks.add.enqueue(1)
    with pytest.raises(TypeError, match=r"tasks\.add\(\): argument b must be int, got 'two'"):
        test_tasks.add.enqueue(1, "two")
    with pytest.raises(TypeError, match="NaN or Infinity, which JSON has no way to store"):
        test_tasks.noop_task.enqueue(float("inf"))
    assert job_keys() == []


def test_validate_on_enqueue():
    task = test_tasks.noop_task  # valid when defined: the "default" queue
    with override_settings(TASKS={"default": {"BACKEND": "tasks_app.backends.SAQBackend", "QUEUES": ["queue-1"]}}):
        with pytest.raises(InvalidTask, match="Queue 'default' is not valid for backend"):
            task.enqueue()
        with pytest.raises(InvalidTask, match="Queue 'default' is not valid for backend"):
            async_to_sync(task.aenqueue)()
        with pytest.raises(InvalidTask, match="Queue 'unknown_queue' is not valid for backend"):
            task.using(queue_name="unknown_queue")


def test_queue_must_be_a_saq_queue():
    tasks = {"default": {"BACKEND": "tasks_app.backends.SAQBackend", "QUEUES": ["default", "emails"]}}
    with override_settings(TASKS=tasks):
        with pytest.raises(InvalidTask, match=r"Queue 'emails' is not a SAQ queue; .* Add it to SAQ\[\"QUEUES\"\]"):
            test_tasks.noop_task.using(queue_name="emails")
        errors = default_task_backend.check()
    assert [e.id for e in errors] == ["tasks_app.E020"]
    assert "'emails'" in errors[0].msg


def test_check_reports_unknown_options():
    tasks = {"default": {"BACKEND": "tasks_app.backends.SAQBackend", "OPTIONS": {"retry": 2, "timeout": 5}}}
    with override_settings(TASKS=tasks):
        errors = default_task_backend.check()
    assert [e.id for e in errors] == ["tasks_app.E021"]
    assert "['retry']" in errors[0].msg


def test_check_passes_for_a_valid_configuration():
    assert default_task_backend.check() == []


def test_naive_run_after():
    with pytest.raises(InvalidTask, match=r"run_after must be an aware datetime\."):
        test_tasks.noop_task.using(run_after=datetime.now())


def test_sync_api_refused_inside_an_event_loop():
    async def call_sync_api():
        return default_task_backend.get_result("123")

    with pytest.raises(RuntimeError, match=r"use await aget_result\(\) here"):
        async_to_sync(call_sync_api)()


@pytest.mark.parametrize("diverted", ["capture_jobs", "immediate"])
def test_enqueue_while_jobs_are_captured_or_run_inline_says_to_use_djangos_immediate_backend(redis_client, diverted):
    # Its job was captured (or run at once) and failed in the runner, which stores its bookkeeping in Redis,
    # with an AttributeError; and get_result could not have read a result back.
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    from tasks_app.testing import capture_jobs

    def context():
        immediate = {**settings.SAQ, "MODE": "immediate"}
        return capture_jobs() if diverted == "capture_jobs" else override_settings(SAQ=immediate)

    with context(), pytest.raises(ImproperlyConfigured, match=r"django\.tasks\.backends\.immediate\.ImmediateBackend"):
        test_tasks.noop_task.enqueue()
    with context(), pytest.raises(ImproperlyConfigured, match=r"noop_task\.enqueue\(\): SAQBackend runs Tasks"):
        async_to_sync(test_tasks.noop_task.aenqueue)()
    assert count("queued") == 0
