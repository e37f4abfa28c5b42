"""Progress reports and ``on_final_failure``, through real workers on real Redis and PostgreSQL."""

import asyncio
import json
import signal
import time

import pytest
from saq.job import Status

from tasks_app import areport_progress, enqueue, report_progress, task
from tasks_app.enqueueing.connections import make_queue
from tasks_app.failures import final_failure
from tasks_app.testing import capture_jobs, run_jobs
from tests.queue_state import stored
from tests.sampleapp.models import Note

from .helpers import manage, run_burst, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def final_failures() -> list[str]:
    return list(Note.objects.filter(text__startswith="final failure").values_list("text", flat=True))


def test_progress_is_stored_on_the_job_and_kept_by_its_outcome(redis_db):
    job = enqueue("fails_after_progress")
    run_burst()
    done = stored(job.key)
    assert done.status == Status.FAILED
    assert done.progress == 0.3
    assert done.meta["progress"] == "30 %"


def test_each_report_of_a_running_job_is_written(redis_db):
    job = enqueue("reports_progress", steps=4)
    run_burst()
    done = stored(job.key)
    assert done.status == Status.COMPLETE
    assert done.result == [True, True, True, True]
    assert done.progress == 1.0  # complete
    assert done.meta["progress"] == "step 4 of 4"


def test_a_sync_task_reports_through_the_workers_loop(redis_db):
    job = enqueue("reports_progress_sync", fraction=0.5, message="half way")
    run_burst()
    done = stored(job.key)
    assert done.status == Status.COMPLETE
    assert done.result is True
    assert done.meta["progress"] == "half way"


def test_a_report_after_the_job_ended_is_refused_and_changes_nothing(redis_db):
    job = enqueue("reports_progress", steps=1)
    run_burst()
    ended = stored(job.key)
    assert ended.status == Status.COMPLETE

    async def late_report():
        queue = make_queue("default")
        try:
            copy = await queue.job(job.key)
            copy.status = Status.ACTIVE  # the attempt's own (stale) view: it thinks it still runs
            return await areport_progress({"job": copy}, 0.2, "too late")
        finally:
            await queue.disconnect()

    assert asyncio.run(late_report()) is False
    after = stored(job.key)
    assert (after.status, after.progress, after.meta["progress"]) == (Status.COMPLETE, 1.0, "step 1 of 1")


def test_a_report_from_another_attempt_is_refused(redis_db):
    job = enqueue("reports_progress", steps=1)

    async def report_as_attempt(attempts: int):
        queue = make_queue("default")
        try:
            copy = await queue.job(job.key)  # QUEUED: not running anywhere
            copy.status, copy.attempts, copy.worker_id = Status.ACTIVE, attempts, "gone-worker"
            return await areport_progress({"job": copy}, 0.2, "stale")
        finally:
            await queue.disconnect()

    assert asyncio.run(report_as_attempt(1)) is False
    assert stored(job.key).progress == 0.0


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan"), "0.5", True])
def test_a_bad_fraction_is_refused_with_a_clear_error(fraction):
    with pytest.raises(ValueError, match="report_progress: fraction="):
        report_progress({"job": None}, fraction)


def test_the_sync_call_on_an_event_loop_names_the_async_one():
    async def on_loop():
        report_progress({"job": None}, 0.5)

    with pytest.raises(RuntimeError, match="await areport_progress"):
        asyncio.run(on_loop())


def test_progress_in_an_inline_run_is_on_the_job():
    with capture_jobs() as jobs:
        enqueue("fails_after_progress")
        run_jobs()
    assert jobs[0].job.progress == 0.3
    assert jobs[0].job.meta["progress"] == "30 %"


# --- on_final_failure ---------------------------------------------------------------------------


def test_the_final_failure_hook_runs_once_after_the_last_attempt_not_on_retries(redis_db):
    job = enqueue("fails_for_good")
    run_burst()
    assert stored(job.key).status == Status.FAILED
    assert Note.objects.filter(text__startswith="fails_for_good attempt").count() == 2
    assert final_failures() == [f"final failure {job.key} failed attempts=2"]


def test_a_job_that_succeeds_after_retries_calls_no_hook(redis_db):
    @task(
        name="flaky_with_hook", retries=2, retry_delay=0, on_final_failure="tests.sampleapp.tasks.record_final_failure"
    )
    async def flaky_with_hook(ctx) -> int:
        if ctx["job"].attempts < 2:
            raise RuntimeError("once")
        return ctx["job"].attempts

    with capture_jobs() as jobs:
        enqueue("flaky_with_hook")
        run_jobs()
    assert jobs[0].job.result == 2
    assert final_failures() == []


def test_the_final_failure_hook_runs_once_in_an_inline_run():
    with capture_jobs() as jobs:
        enqueue("fails_for_good")
        run_jobs()
    assert jobs[0].job.status == Status.FAILED
    assert final_failures() == [f"final failure {jobs[0].job.key} failed attempts=2"]


def test_a_hook_that_raises_is_logged_not_raised(caplog):
    def broken(job):
        raise ValueError("hook bug")

    @task(name="fails_with_broken_hook", retries=0, on_final_failure=broken)
    async def fails_with_broken_hook(ctx) -> None:
        raise RuntimeError("job bug")

    with capture_jobs() as jobs:
        enqueue("fails_with_broken_hook")
        run_jobs()
    assert jobs[0].job.status == Status.FAILED
    assert "on_final_failure of task fails_with_broken_hook failed" in caplog.text


def test_a_hook_that_raises_system_exit_is_logged_not_raised(caplog):
    def exits(job):
        raise SystemExit(4)

    @task(name="fails_with_exiting_hook", retries=0, on_final_failure=exits)
    async def fails_with_exiting_hook(ctx) -> None:
        raise RuntimeError("job bug")

    with capture_jobs() as jobs:
        enqueue("fails_with_exiting_hook")
        run_jobs()  # SystemExit went on, out of run_jobs (in a worker: the worker exited)
    assert jobs[0].job.status == Status.FAILED
    assert "on_final_failure of task fails_with_exiting_hook failed" in caplog.text


def test_a_hook_of_a_bad_type_is_refused_at_registration():
    with pytest.raises(TypeError, match="on_final_failure=3 must be a callable or a dotted path"):
        task(on_final_failure=3)


def test_a_task_without_a_hook_is_passed_over():
    from saq.job import Job

    assert asyncio.run(final_failure(Job(function="boom", key="k"))) is False


def test_a_job_swept_with_no_attempts_left_calls_the_hook_once(start_worker, subprocess_env):
    env = {**subprocess_env, "TEST_SAQ": json.dumps({"DEFAULT_JOB_OPTIONS": {"heartbeat": 2}})}
    doomed = start_worker(env=env)
    doomed.wait_for_output("SIGTERM/SIGINT for a clean stop")
    result = manage("enqueue", "hangs_until_killed", "text=doomed", env=env)
    assert result.returncode == 0, result.stderr
    key = result.stdout.split()[0]
    wait_until(lambda: Note.objects.filter(text="doomed started").exists(), message="the job to start")
    doomed.signal(signal.SIGKILL)
    doomed.wait(5)
    sweepers = [start_worker(env=env), start_worker(env=env)]  # two sweepers: still one call
    wait_until(lambda: final_failures(), timeout=30, message="the hook to be called")
    job = stored(key)
    assert job.status == Status.ABORTED
    assert "no attempts left" in job.error
    # Each sweeper sweeps every second: give both a few more rounds to (wrongly) call it again.
    time.sleep(3)
    assert sum(w.output.count("Swept job") for w in sweepers) == 1
    assert final_failures() == [f"final failure {key} aborted attempts=1"]
    assert Note.objects.filter(text="doomed started").count() == 1
