"""SAQBackend: routing to queues, run_after, retries and timeouts, signals, on-commit, other processes."""

import asyncio
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.tasks import TaskResultStatus, default_task_backend
from django.tasks.exceptions import TaskResultDoesNotExist
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.test import override_settings
from django.utils import timezone
from saq.job import Status

from tasks_app import operations
from tasks_app.backends.runner import META, note_attempt, note_running
from tasks_app.engine import attempts, records
from tasks_app.engine.clock import job_time
from tasks_app.exceptions import JobInterrupted
from tasks_app.models import OutboxEntry
from tests.queue_state import count, due_at, job_keys, listed
from tests.tasks_app.helpers import queue_opener

from . import tasks as test_tasks
from .conftest import SAQ_TASKS

pytestmark = pytest.mark.django_db(transaction=True)


def backend(**options):
    return {"default": {**SAQ_TASKS["default"], "OPTIONS": {**SAQ_TASKS["default"]["OPTIONS"], **options}}}


def test_queue_name_routes_to_that_saq_queue(redis_client, work):
    saq = {**settings.SAQ, "QUEUES": {**settings.SAQ["QUEUES"], "emails": {"URL": settings.REDIS_URL}}}
    tasks = {"default": {**SAQ_TASKS["default"], "QUEUES": ["default", "emails"]}}
    with override_settings(SAQ=saq, TASKS=tasks):
        result = test_tasks.add.using(queue_name="emails").enqueue(2, 3)
        assert listed(result.id, "queued", queue="emails") and count("queued", queue="emails") == 1
        assert count("queued") == 0

        work()

        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.return_value == 5
        assert result.task.queue_name == "emails"


def test_run_after_defers_the_task(redis_client, work):
    later = timezone.now() + timedelta(minutes=10)
    deferred = test_tasks.noop_task.using(run_after=later).enqueue()
    soon = timezone.now() + timedelta(seconds=1.5)
    due_soon = test_tasks.calculate_meaning_of_life.using(run_after=soon).enqueue()
    # Scheduled, not queued: SAQ's incomplete set, scored with the time to run (never earlier).
    assert count("queued") == 0
    score = due_at(deferred.id)
    assert later.timestamp() <= score < later.timestamp() + 1

    work()  # waits for jobs due within a few seconds, not for the one in ten minutes

    due_soon.refresh()
    assert due_soon.status == TaskResultStatus.SUCCESSFUL, [e.traceback for e in due_soon.errors]
    assert due_soon.started_at >= soon
    deferred.refresh()
    assert deferred.status == TaskResultStatus.READY
    assert deferred.task.run_after == later
    assert default_task_backend.get_result(deferred.id) == deferred


def test_retries_record_every_attempt(work):
    with override_settings(TASKS=backend(retries=1, retry_delay=0)):
        result = test_tasks.fails_on_first_attempt.enqueue()
        work()
        result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 2  # the attempt number TaskContext gave the task
    assert result.attempts == 2
    assert len(result.worker_ids) == 2
    assert [error.exception_class for error in result.errors] == [RuntimeError]
    assert "RuntimeError: first attempt fails" in result.errors[0].traceback
    assert result.started_at < result.last_attempted_at


def test_timeout_is_a_failure_with_its_error(work):
    with override_settings(TASKS=backend(timeout=1)):
        result = test_tasks.sleep_for.enqueue(30)
        started = time.monotonic()
        work()
        result.refresh()
    assert time.monotonic() - started < 15
    assert result.status == TaskResultStatus.FAILED
    assert [error.exception_class for error in result.errors] == [TimeoutError]
    assert result.attempts == 1


def test_signals(work):
    received = []

    def receiver(signal_name):
        def handler(sender, task_result, **kwargs):
            received.append((signal_name, task_result.id, task_result.status, task_result.attempts))

        return handler

    handlers = {signal: receiver(name) for signal, name in [(task_enqueued, "enqueued"), (task_started, "started")]}
    handlers[task_finished] = receiver("finished")
    for signal, handler in handlers.items():
        signal.connect(handler)
    try:
        ok = test_tasks.noop_task.enqueue()
        assert received == [("enqueued", ok.id, TaskResultStatus.READY, 0)]
        failing = test_tasks.failing_task_value_error.enqueue()
        work()
    finally:
        for signal, handler in handlers.items():
            signal.disconnect(handler)
    assert sorted(received) == sorted(
        [
            ("enqueued", ok.id, TaskResultStatus.READY, 0),
            ("started", ok.id, TaskResultStatus.RUNNING, 1),
            ("finished", ok.id, TaskResultStatus.SUCCESSFUL, 1),
            ("enqueued", failing.id, TaskResultStatus.READY, 0),
            ("started", failing.id, TaskResultStatus.RUNNING, 1),
            ("finished", failing.id, TaskResultStatus.FAILED, 1),
        ]
    )


def test_a_task_whose_own_code_meets_cancelled_error_fails_and_says_so_to_the_finished_signal(work):
    finished = []

    def handler(sender, task_result, **kwargs):
        finished.append((task_result.id, task_result.status))

    task_finished.connect(handler)
    try:
        result = test_tasks.awaits_a_cancelled_task.enqueue()
        work()
    finally:
        task_finished.disconnect(handler)
    assert finished == [(result.id, TaskResultStatus.FAILED)]
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert "CancelledError" in result.errors[0].traceback


def test_task_finished_is_sent_once_its_outcome_is_stored_and_says_what_was_stored(work):
    # It was sent by the Task's runner before the worker wrote the outcome: a receiver reading the result then
    # saw RUNNING, an abort coming meanwhile ended the job ABORTED after SUCCESSFUL was sent, and a timeout
    # sent nothing at all.
    seen = []

    def handler(sender, task_result, **kwargs):
        stored = default_task_backend.get_result(task_result.id)
        sent = (task_result.status, task_result.attempts, task_result.errors, task_result.finished_at)
        if task_result.status == TaskResultStatus.READY:
            # Queued again before the send: another slot may have taken it since (retry_delay=0).
            agrees = stored.attempts >= sent[1] and stored.errors[: len(sent[2])] == sent[2]
        else:
            agrees = sent == (stored.status, stored.attempts, stored.errors, stored.finished_at)
            if task_result.status == TaskResultStatus.SUCCESSFUL:
                agrees = agrees and task_result.return_value == stored.return_value
        seen.append((task_result.id, sent[0], agrees))

    task_finished.connect(handler)
    try:
        with override_settings(TASKS=backend(retries=1, retry_delay=0, timeout=1)):
            ok = test_tasks.returns_int_keys.enqueue()
            second = test_tasks.fails_on_first_attempt.enqueue()
            slow = test_tasks.sleep_for.enqueue(30)
            work()
    finally:
        task_finished.disconnect(handler)
    ready, successful, failed = TaskResultStatus.READY, TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED
    assert sorted(seen) == sorted(
        [
            (ok.id, successful, True),
            (second.id, ready, True),
            (second.id, successful, True),
            (slow.id, ready, True),
            (slow.id, failed, True),
        ]
    )
    slow.refresh()
    assert [error.exception_class for error in slow.errors] == [TimeoutError, TimeoutError]
    ok.refresh()
    assert ok.return_value == {"1": "one", "pair": [1, 2]}


def test_a_slow_task_finished_receiver_leaves_the_next_job_taken_for_its_slot_this_workers(work):
    # The receivers run after the outcome's write, which took the slot's next job in the same round trip:
    # that job went unheartbeated while they ran, was swept after its heartbeat (1 s), and ended ABORTED
    # without running.
    async def slow(sender, task_result, **kwargs):
        await asyncio.sleep(3)

    task_finished.connect(slow)
    try:
        with override_settings(TASKS=backend(heartbeat=1)):
            first, second = test_tasks.noop_task.enqueue(), test_tasks.noop_task.enqueue()
            out = work("--concurrency", "1")
    finally:
        task_finished.disconnect(slow)
    for result in (first, second):
        result.refresh()
        assert (result.status, result.attempts) == (TaskResultStatus.SUCCESSFUL, 1), out
    assert "Swept" not in out and "no longer this worker's" not in out


def test_enqueue_logs(caplog):
    with caplog.at_level("DEBUG", logger="django.tasks"):
        result = test_tasks.noop_task.enqueue()
    messages = [r.getMessage() for r in caplog.records if r.name == "django.tasks"]
    assert len(messages) == 1
    assert "enqueued" in messages[0] and result.id in messages[0]


def test_does_not_wait_for_commit_by_default(redis_client):
    with transaction.atomic():
        result = test_tasks.noop_task.enqueue()
        assert result.enqueued_at is not None
        assert count("queued") == 1


def test_enqueue_on_commit_returns_the_id_and_enqueues_after_commit(redis_client, work):
    enqueued = []

    def on_enqueued(sender, task_result, **kwargs):
        enqueued.append(task_result.id)

    task_enqueued.connect(on_enqueued)
    try:
        with override_settings(TASKS=backend(enqueue_on_commit=True)):
            with transaction.atomic():
                result = test_tasks.add.enqueue(20, 22)
                assert result.id and result.status == TaskResultStatus.READY and result.enqueued_at is None
                with pytest.raises(TaskResultDoesNotExist):
                    default_task_backend.get_result(result.id)
                assert count("queued") == 0
                assert OutboxEntry.objects.filter(job_key=result.id).exists()  # durable, in this transaction
                assert enqueued == []
            assert enqueued == [result.id]
            assert not OutboxEntry.objects.exists()
            stored = default_task_backend.get_result(result.id)
            assert stored.status == TaskResultStatus.READY and stored.enqueued_at is not None

            work()
            result.refresh()
    finally:
        task_enqueued.disconnect(on_enqueued)
    assert result.return_value == 42


def test_enqueue_on_commit_rollback_enqueues_nothing(redis_client):
    with override_settings(TASKS=backend(enqueue_on_commit=True)):
        with pytest.raises(RuntimeError), transaction.atomic():
            result = test_tasks.noop_task.enqueue()
            raise RuntimeError("roll back")
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(result.id)
    assert job_keys() == []
    assert not OutboxEntry.objects.exists()


READ_RESULT = """
import django
django.setup()
from django.tasks import default_task_backend
from django.test import override_settings
from tests.tasks_app.backends.conftest import SAQ_TASKS
from tasks_app.engine import attempts
with override_settings(TASKS=SAQ_TASKS):
    result = default_task_backend.get_result({id!r})
    print(result.status, result.return_value, result.attempts, result.task.module_path)
"""


def test_get_result_from_another_process(work):
    result = test_tasks.calculate_meaning_of_life.enqueue()
    work()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "TEST_REDIS_URL": settings.REDIS_URL}
    completed = subprocess.run(
        [sys.executable, "-c", READ_RESULT.format(id=result.id)],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["SUCCESSFUL", "42", "1", test_tasks.calculate_meaning_of_life.module_path]


def test_a_job_taken_but_not_yet_noted_by_the_runner_is_running_since_its_take(redis_client):
    from tasks_app.enqueueing.connections import make_queue

    result = test_tasks.sleep_for.enqueue(30)

    async def take():
        queue = make_queue("default")
        try:
            return await attempts.take(queue, "w1")
        finally:
            await queue.disconnect()

    taken = asyncio.run(take())  # what a worker's take does before its runner records the attempt
    result.refresh()
    assert result.status == TaskResultStatus.RUNNING and result.finished_at is None
    assert result.started_at == result.last_attempted_at == job_time(taken.started)
    assert result.worker_ids == ["w1"]


@pytest.fixture
def finished_sent():
    """The TaskResults task_finished is sent with, in this process, during the test."""
    sent = []

    def handler(sender, task_result, **kwargs):
        sent.append(task_result)

    task_finished.connect(handler)
    yield sent
    task_finished.disconnect(handler)


def test_running_then_aborted(worker_in_thread, finished_sent):
    result = test_tasks.sleep_for.enqueue(30)
    deadline = time.monotonic() + 10
    while result.status != TaskResultStatus.RUNNING:
        assert time.monotonic() < deadline, "the worker did not start the task"
        time.sleep(0.05)
        result.refresh()
    assert result.started_at is not None and result.finished_at is None
    assert result.worker_ids == [worker_in_thread.id]

    operations.abort_job("default", result.id, by="ops")  # as the dashboard's Abort button does

    while result.status == TaskResultStatus.RUNNING:
        assert time.monotonic() < deadline + 10, "the worker did not cancel the task"
        time.sleep(0.05)
        result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.finished_at is not None
    (error,) = result.errors
    assert error.exception_class is JobInterrupted
    assert error.traceback == "Aborted from the dashboard by ops."
    deadline = time.monotonic() + 10  # written first, sent after: the send may still be on its way
    while not finished_sent:
        assert time.monotonic() < deadline, "task_finished was not sent for the aborted Task"
        time.sleep(0.05)
    sent = [(r.id, r.status, [e.exception_class for e in r.errors]) for r in finished_sent]
    assert sent == [(result.id, TaskResultStatus.FAILED, [JobInterrupted])]


def test_an_attempt_ended_while_task_started_is_sent_sends_task_finished_too(work, finished_sent):
    # The runner gave the worker its task_finished callback after task_started's receivers had run: a timeout
    # (or an abort) while they ran ended the attempt with task_started sent and task_finished never.
    with override_settings(TASKS=backend(timeout=1)):
        result = test_tasks.slow_to_start.enqueue()
        work()
    sent = [(r.id, r.status, [e.exception_class for e in r.errors]) for r in finished_sent]
    assert sent == [(result.id, TaskResultStatus.FAILED, [TimeoutError])]


def test_a_failed_tasks_django_log_line_carries_its_traceback(work, caplog):
    # Django's log_task_finished reads the traceback from sys.exc_info(): task_finished is sent in a handler.
    with caplog.at_level("INFO", logger="django.tasks"):
        result = test_tasks.failing_task_value_error.enqueue()
        work()
    (line,) = [r for r in caplog.records if r.name == "django.tasks" and r.levelname == "ERROR"]
    assert result.id in line.getMessage() and "state=FAILED" in line.getMessage()
    assert line.exc_info is not None and line.exc_info[0] is ValueError


def test_an_abort_between_the_take_and_the_attempt_s_start_keeps_its_reason(redis_client):
    # The runner stored its bookkeeping by writing the worker's copy of the job over the record, which
    # dropped the reason an abort had written since the take (the status stayed aborting).
    result = test_tasks.noop_task.enqueue()

    async def scenario():
        async with queue_opener(settings.REDIS_URL)() as queue:
            job = await attempts.take(queue, "worker-1")
            await records.request_abort(queue, job.key, "stopped by an editor")
            note_attempt(job, "worker-1")
            await note_running(job)  # with the worker's copy, taken before the abort
            return await queue.job(job.key)

    stored = asyncio.run(scenario())
    assert stored.key == result.id
    assert (stored.status, stored.error) == (Status.ABORTING, "stopped by an editor")
    assert stored.meta[META]["worker_ids"] == ["worker-1"]
