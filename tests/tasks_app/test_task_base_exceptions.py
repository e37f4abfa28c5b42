"""A task that raises SystemExit, KeyboardInterrupt or its own CancelledError fails like any other
error: it does not end the worker (asyncio re-raises the first two out of its loop, which once took
down every worker that took the job, the attempt uncounted), nor is its job left active until the
sweep ends it "aborted" (the third, once raised past the attempt unrecorded)."""

import pytest
from saq.job import Status

from tasks_app import enqueue
from tasks_app.testing import run_jobs
from tests.queue_state import stored
from tests.sampleapp.models import Note

from .helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

CASES = [
    ("raises_system_exit", "TaskInterrupted: The task raised SystemExit(3)"),
    ("raises_keyboard_interrupt", "TaskInterrupted: The task raised KeyboardInterrupt(from the task)"),
    ("awaits_a_cancelled_task", "CancelledError"),
]


def test_each_fails_its_job_and_the_worker_runs_on(start_worker, redis_db):
    worker = start_worker()
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    keys = {name: enqueue(name).key for name, _ in CASES}
    for name, error in CASES:
        job = wait_until(lambda key=keys[name]: (j := stored(key)).status == Status.FAILED and j, message=name)
        assert job.attempts == 1, name
        assert error in job.error, (name, job.error)
    assert worker.process.poll() is None  # still running: it takes the next job
    assert wait_until(lambda: stored(enqueue("noop").key).status == Status.COMPLETE)


@pytest.mark.parametrize(("name", "error"), CASES, ids=[name for name, _ in CASES])
def test_each_fails_its_job_in_run_jobs_as_in_a_worker(redis_db, name, error):
    key = enqueue(name).key
    run_jobs()
    job = stored(key)
    assert (job.status, job.attempts) == (Status.FAILED, 1)
    assert error in job.error


def test_an_aborted_sync_task_keeps_the_reason_and_audit_of_its_abort(start_worker, redis_db):
    # Held while its thread runs on (it cannot be stopped): the mark once wrote the worker's copy over the
    # record, dropping who aborted it and why.
    from tasks_app import operations

    worker = start_worker()
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    key = enqueue("sync_sleep_then_note", seconds=3, text="aborted sync").key
    wait_until(lambda: Note.objects.filter(text="aborted sync started").exists(), message="the job to start")
    assert operations.abort_job("default", key, "alice").status == Status.ABORTING
    job = wait_until(lambda: (j := stored(key)).status == Status.ABORTED and j, message="the abort to end")
    assert job.error == "Aborted from the dashboard by alice."
    assert [entry["by"] for entry in job.meta["dashboard"]] == ["alice"]
