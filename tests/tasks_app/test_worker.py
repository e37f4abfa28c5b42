"""Jobs through a real worker (runworker --burst, in this process) on real Redis and PostgreSQL."""

import asyncio
import itertools
import json
import logging
import threading
from datetime import UTC, datetime

import pytest
from saq.job import Status

from tasks_app import conf, enqueue
from tasks_app.engine import pausing
from tasks_app.enqueueing.connections import make_queue
from tests.queue_state import count
from tests.sampleapp.models import Note

from .helpers import run_burst

pytestmark = pytest.mark.django_db(transaction=True)


def job_state(key: str):
    async def fetch():
        queue = make_queue("default")
        try:
            return await queue.job(key)
        finally:
            await queue.disconnect()

    return asyncio.run(fetch())


def test_async_orm_task_runs_through_a_real_worker(redis_db):
    job = enqueue("add_note", text="hello")
    run_burst()
    done = job_state(job.key)
    assert done.status == Status.COMPLETE
    assert Note.objects.get(pk=done.result["id"]).text == "hello"


def test_sync_task_runs_in_a_worker_thread(redis_db):
    job = enqueue("add_note_sync", text="from a thread")
    run_burst()
    done = job_state(job.key)
    assert done.status == Status.COMPLETE
    note = Note.objects.get(pk=done.result["id"])
    assert note.text == "from a thread"
    assert note.thread.startswith("saq-default") and note.thread != threading.main_thread().name


def test_retry_with_backoff_then_success(redis_db):
    job = enqueue("flaky", fail_times=2)
    run_burst()
    done = job_state(job.key)
    assert done.status == Status.COMPLETE
    assert done.result == {"attempt": 3}
    attempts = list(Note.objects.filter(text__startswith="flaky attempt").values_list("text", flat=True))
    assert sorted(attempts) == ["flaky attempt 1", "flaky attempt 2", "flaky attempt 3"]


def test_retries_are_exhausted_then_the_job_fails(redis_db):
    job = enqueue("flaky", fail_times=10, retries=1)
    run_burst()
    done = job_state(job.key)
    assert done.status == Status.FAILED
    assert done.attempts == 2  # the first attempt plus one retry
    assert "failing on purpose, attempt 2" in done.error


def test_a_retried_attempt_logs_one_line_and_the_final_failure_its_traceback(redis_db, caplog):
    enqueue("flaky", fail_times=10, retries=1)
    with caplog.at_level(logging.INFO, logger="tasks_app"):
        run_burst()
    lines = [r for r in caplog.records if "task=flaky" in r.getMessage()]
    retried, failed = (
        [r for r in lines if "outcome=retrying" in r.getMessage()],
        [r for r in lines if "outcome=failed" in r.getMessage()],
    )
    assert len(retried) == 1 and len(failed) == 1
    assert retried[0].getMessage().endswith("error=RuntimeError: failing on purpose, attempt 1")
    assert retried[0].exc_info is None and retried[0].error == "RuntimeError: failing on purpose, attempt 1"
    assert failed[0].exc_info is not None  # the whole traceback, once, when it fails for good


def test_timeout_cancels_the_job(redis_db, caplog):
    job = enqueue("too_slow", seconds=30)
    with caplog.at_level(logging.INFO, logger="tasks_app"):
        run_burst()
    done = job_state(job.key)
    assert done.status == Status.FAILED
    assert "TimeoutError" in done.error
    assert any(getattr(r, "outcome", None) == "timeout" for r in caplog.records)


def test_a_sync_task_past_its_timeout_never_runs_twice_at_once_nor_after_it_ended(redis_db):
    # timeout=1, two retries, retry_delay=0, a body of 1.5 s: each attempt times out while its thread,
    # which cannot be stopped, goes on. The next attempt waits for that thread, and so does the end.
    job = enqueue("sync_overrun", seconds=1.5)
    run_burst()
    done = job_state(job.key)
    assert (done.status, done.attempts) == (Status.FAILED, 3)
    assert "exceeded its timeout of 1s" in done.error and "held" not in done.meta
    times = dict(Note.objects.filter(text__startswith="overrun ").values_list("text", "created"))
    spans = [(times[f"overrun {n} started"], times[f"overrun {n} finished"]) for n in (1, 2, 3)]
    for (_, ended), (started, _) in itertools.pairwise(spans):
        assert started >= ended  # the next attempt starts only once the last one's thread returned
    stored_terminal = datetime.fromtimestamp(done.completed / 1000, tz=UTC)
    assert spans[-1][1] <= stored_terminal  # nothing of it runs after the job was stored failed


@pytest.mark.timeout(120)  # before the fix, the burst worker never ended
def test_a_burst_worker_ends_though_records_were_evicted_and_counts_them_lost(redis_db):
    ok = enqueue("noop")
    gone = enqueue("noop")
    later = enqueue("noop", delay=1)
    queue = make_queue("default")
    redis_db.delete(queue.job_id(gone.key), queue.job_id(later.key))  # as an allkeys-lru Redis would
    run_burst()
    assert job_state(ok.key).status == Status.COMPLETE
    assert redis_db.llen(queue.namespace("queued")) == redis_db.zcard(queue.namespace("incomplete")) == 0
    metrics = redis_db.hgetall(queue.namespace("metrics"))
    assert int(metrics[json.dumps(["attempts", "(unregistered)", "lost"]).encode()]) == 2


def test_default_job_options_are_safe(redis_db):
    job = enqueue("noop")
    defaults = conf.default_job_options()
    assert job.timeout == defaults["timeout"] > 0
    assert job.heartbeat == defaults["heartbeat"] > 0
    assert job.retries == defaults["retries"] + 1  # SAQ counts attempts, we count retries
    assert job.retry_backoff and job.retry_delay > 0
    assert 0 < job.ttl <= 30 * 24 * 3600


def test_each_finished_job_logs_one_structured_line(redis_db, caplog):
    ok = enqueue("noop")
    bad = enqueue("boom")
    with caplog.at_level(logging.INFO, logger="tasks_app.worker"):
        run_burst()
    records = {r.job_key: r for r in caplog.records if r.name == "tasks_app.worker" and hasattr(r, "job_key")}
    assert set(records) == {ok.key, bad.key}
    assert records[ok.key].outcome == "complete" and records[ok.key].task == "noop"
    assert records[ok.key].attempt == 1 and records[ok.key].duration_ms >= 0
    assert records[bad.key].outcome == "failed" and records[bad.key].levelname == "ERROR"
    assert records[bad.key].exc_info[0] is ValueError  # the traceback is logged too


def test_database_connection_killed_between_jobs_does_not_fail_the_next(redis_db):
    from django.db import connection

    first = enqueue("backend_pid")
    run_burst()
    pid = job_state(first.key).result
    # Kill every other backend of this test database, which includes the worker's.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    assert pid
    second = enqueue("add_note", text="after the kill")
    third = enqueue("backend_pid")
    run_burst()
    assert job_state(second.key).status == Status.COMPLETE
    assert job_state(third.key).status == Status.COMPLETE
    assert Note.objects.filter(text="after the kill").exists()


def test_cron_jobs_are_scheduled_in_time_zone_with_a_fixed_key(redis_db, settings):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from tasks_app.engine.cron import next_run
    from tasks_app.process.runner import WorkerOptions, build_worker

    settings.TIME_ZONE = "America/New_York"
    settings.SAQ = {**settings.SAQ, "CRON_JOBS": [{"task": "count_notes", "cron": "0 2 * * *", "timeout": 42}]}

    async def schedule_twice():
        worker = build_worker(WorkerOptions(queue="default", concurrency=1), drain_outbox=False)
        try:
            await worker.schedule()
            await worker.schedule()  # a second pass must not add a second job
            return await worker.queue.job("cron:count_notes"), await worker.queue.count("incomplete")
        finally:
            await worker.queue.disconnect()

    job, incomplete = asyncio.run(schedule_twice())
    expected = next_run("0 2 * * *", ZoneInfo("America/New_York"), datetime.now(ZoneInfo("UTC")))
    assert job.function == "count_notes"
    assert job.scheduled == int(expected.timestamp())
    assert job.timeout == 42
    assert incomplete == 1


def test_a_task_can_enqueue_another(redis_db):
    job = enqueue("chain", text="chained")
    run_burst()
    assert job_state(job.key).status == Status.COMPLETE
    assert Note.objects.filter(text="chained").exists()


def test_lifecycle_hooks_from_settings(redis_db, settings):
    from tests.sampleapp import hooks

    hooks.calls.clear()
    path = "tests.sampleapp.hooks"
    settings.SAQ = {
        **settings.SAQ,
        "HOOKS": {
            "startup": [f"{path}.startup"],
            "shutdown": f"{path}.shutdown",
            "before_process": [f"{path}.before_process"],
            "after_process": [f"{path}.after_process"],
        },
    }
    job = enqueue("read_context")
    run_burst()
    assert job_state(job.key).result == "set at startup"  # startup hooks can prepare ctx
    assert hooks.calls == [
        ("startup", None),
        ("before_process", "read_context"),
        ("after_process", "read_context"),
        ("shutdown", None),
    ]


def test_any_task_can_be_routed_to_another_queue(redis_db, settings):
    from django.test import override_settings

    url = conf.queue_config("default").url
    with override_settings(SAQ={**settings.SAQ, "QUEUES": {"default": {"URL": url}, "slow": {"URL": url}}}):
        job = enqueue("greet", name="ada", queue="slow")
        assert count("queued", queue="slow") == 1
        run_burst("--queue", "slow")

        async def fetch():
            queue = make_queue("slow")
            try:
                return await queue.job(job.key)
            finally:
                await queue.disconnect()

        assert asyncio.run(fetch()).result == "hello ada"


@pytest.mark.parametrize("task", ["unstorable_result", "nan_result"])
def test_a_result_that_cannot_be_stored_fails_the_job_with_a_clear_error(redis_db, task):
    job = enqueue(task)
    run_burst()
    done = job_state(job.key)
    assert done.status == Status.FAILED and done.attempts == 1  # retrying would not help
    assert "cannot be stored as JSON" in done.error


@pytest.mark.parametrize("fail", [False, True], ids=["completing", "failing-with-retries-left"])
def test_meta_that_cannot_be_stored_fails_the_job_and_keeps_the_rest(redis_db, fail):
    job = enqueue("unstorable_meta", fail=fail)
    run_burst()  # and the burst worker exits: nothing escapes its loop
    done = job_state(job.key)
    assert done.status == Status.FAILED and done.attempts == 1  # not retried: it would fail the same way
    assert "cannot be stored" in done.error and "Dropped from meta: finished_at" in done.error
    assert done.meta.get("note") == "kept" and "finished_at" not in done.meta
    assert count("active") == 0


def test_a_result_nested_too_deep_for_json_fails_the_job(redis_db):
    job = enqueue("deeply_nested_result")
    run_burst()
    done = job_state(job.key)
    assert done.status == Status.FAILED and done.result is None
    assert "cannot be stored" in done.error


def test_a_burst_worker_on_a_paused_queue_exits(redis_db, caplog):
    from tasks_app.enqueueing.connections import make_queue

    async def pause():
        queue = make_queue("default")
        try:
            first, _ = await pausing.pause(queue, "ops")
            again, _ = await pausing.pause(queue, "someone else")
            return first, again
        finally:
            await queue.disconnect()

    enqueue("noop")
    first, again = asyncio.run(pause())
    assert again["by"] == "ops" == first["by"]  # whoever paused first stays on record
    with caplog.at_level(logging.WARNING):
        run_burst()  # returns: nothing is taken from a paused queue, and nothing is waited for
    assert "Queue default is paused: this --burst worker ends without its waiting jobs" in caplog.text
    assert job_state_count("queued") == 1


def job_state_count(kind: str) -> int:
    from tests.queue_state import count

    return count(kind)


@pytest.mark.parametrize(("chosen", "expected"), [("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")])
def test_the_worker_runs_on_the_event_loop_the_setting_names(settings, redis_db, chosen, expected):
    settings.SAQ = {**settings.SAQ, "EVENT_LOOP": chosen}
    job = enqueue("event_loop_kind")
    run_burst()
    assert job_state(job.key).result == expected


def test_a_job_of_a_task_this_worker_does_not_know_fails_saying_where_tasks_are_found(redis_db):
    from saq.job import Job

    from tasks_app.engine import records

    async def submit() -> str:
        queue = make_queue("default")
        try:
            # As a web process that imported a module the workers never import would enqueue it.
            [(job, _)] = await records.submit_many(queue, [Job("declared_elsewhere", key="elsewhere", retries=1)])
            return job.key
        finally:
            await queue.disconnect()

    key = asyncio.run(submit())
    run_burst()
    done = job_state(key)
    assert done.status == Status.FAILED
    assert "No task 'declared_elsewhere' is registered in this process" in done.error
    assert "declare it with @task there" in done.error and "restart the workers" in done.error
