"""tasks_app.testing: capture_jobs, run_jobs and immediate mode, on real PostgreSQL (and Redis, to prove
that nothing reaches it)."""

import asyncio
import sys
import threading
from io import StringIO

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.core import checks
from django.core.management import call_command
from django.db import connection, transaction
from saq.job import TERMINAL_STATUSES, Status

from tasks_app import aenqueue, enqueue, enqueue_many, enqueue_many_on_commit, enqueue_on_commit
from tasks_app.enqueueing import diversion
from tasks_app.models import OutboxEntry
from tasks_app.registry import TaskSpec, registry
from tasks_app.testing import capture_jobs, run_jobs
from tests.queue_state import stored
from tests.sampleapp import hooks
from tests.sampleapp.models import Note

from .helpers import wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def extra_task():
    """Register throwaway tasks for one test."""
    names = []

    def register(func, name, **options):
        registry.register(TaskSpec(name=name, func=func, options=options))
        names.append(name)

    yield register
    for name in names:
        registry.unregister(name)


def immediate(settings):
    settings.SAQ = {**settings.SAQ, "MODE": "immediate"}


# --- capture_jobs ---------------------------------------------------------------------------------


def test_capture_records_every_way_of_enqueueing_and_nothing_reaches_redis(
    redis_db, django_capture_on_commit_callbacks
):
    with capture_jobs() as captured:
        enqueue("greet", name="ada", times=2, timeout=30, key="greet-ada")
        asyncio.run(aenqueue("add_note", text="from async", queue="default", delay=60))
        enqueue_many("greet", [{"name": "a"}, {"name": "b"}], retries=5)
        with django_capture_on_commit_callbacks(execute=True):
            key = enqueue_on_commit("add_note", text="on commit")
            enqueue_many_on_commit("greet", [{"name": "c"}])
            assert captured.tasks == ["greet", "add_note", "greet", "greet"]  # on commit, not before
    assert captured.tasks == ["greet", "add_note", "greet", "greet", "add_note", "greet"]
    first = captured[0]
    assert (first.task, first.kwargs, first.key, first.queue, first.scheduled) == (
        "greet",
        {"name": "ada", "times": 2},
        "greet-ada",
        "default",
        None,
    )
    assert first.options == {
        "timeout": 30,
        "retries": 3,
        "retry_delay": 1.0,
        "retry_backoff": 300,
        "ttl": 7 * 24 * 3600,
        "heartbeat": 30,
        "priority": 0,
    }
    assert captured[1].scheduled is not None and first.status == "queued"
    assert [job.options["retries"] for job in captured.of("greet")] == [3, 5, 5, 3]
    assert captured[4].key == key and captured[4].kwargs == {"text": "on commit"}
    assert redis_db.keys("*") == []
    assert not OutboxEntry.objects.exists()  # delivered (to the capture) on commit, as to Redis


def test_a_rolled_back_transaction_captures_nothing(django_capture_on_commit_callbacks):
    with (
        capture_jobs() as captured,
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        enqueue_on_commit("add_note", text="never")
        raise RuntimeError("rolled back")
    assert len(captured) == 0


def test_a_pending_key_deduplicates_as_in_redis():
    with capture_jobs() as captured:
        first = enqueue("greet", name="ada", key="once")
        again = enqueue("greet", name="bob", key="once")
        assert again is first and captured.tasks == ["greet"]
        run_jobs()
        enqueue("greet", name="cyd", key="once")  # the first has ended: a new job
    assert [job.kwargs["name"] for job in captured] == ["ada", "cyd"]


def test_the_sync_api_is_refused_in_async_code_as_without_a_capture(captured_jobs):
    async def misuse():
        enqueue("noop")

    with pytest.raises(RuntimeError, match=r"await aenqueue\(\.\.\.\)"):
        asyncio.run(misuse())
    assert len(captured_jobs) == 0


def test_the_fixture_captures_for_the_whole_test(captured_jobs):
    enqueue("noop")
    assert captured_jobs.tasks == ["noop"]


def test_production_pays_one_attribute_check(settings):
    enqueue_on_commit("noop")  # reads the settings once
    assert diversion.target is None
    with capture_jobs():
        assert diversion.target is not None
    assert diversion.target is None


# --- run_jobs -------------------------------------------------------------------------------------


def test_run_jobs_runs_in_the_tests_transaction_and_thread():
    Note.objects.create(text="made by the test, not committed")
    with capture_jobs():
        enqueue("count_notes")
        enqueue("add_note_sync", text="sync")
        done = run_jobs()
    counted, synced = done.jobs
    assert counted.status == Status.COMPLETE and counted.result == 1  # it saw the uncommitted row
    assert synced.result["thread"] == threading.current_thread().name
    assert Note.objects.filter(text="sync").exists()
    # The connection hygiene left the test's transaction alone: it still works, and still holds its rows.
    assert connection.in_atomic_block and Note.objects.count() == 2


def test_run_jobs_follows_chains_and_retries_at_once_until_none_is_left():
    with capture_jobs() as captured:
        enqueue("chain", text="second")
        enqueue("flaky", fail_times=2)
        done = run_jobs()
    assert captured.tasks == ["chain", "flaky", "add_note"]
    assert [(job.function, job.status, job.attempts) for job in done.jobs] == [
        ("chain", Status.COMPLETE, 1),
        ("add_note", Status.COMPLETE, 1),
        ("flaky", Status.COMPLETE, 3),
    ]
    assert done.results[captured[1].key] == {"attempt": 3}
    assert sorted(Note.objects.values_list("text", flat=True)) == [
        "flaky attempt 1",
        "flaky attempt 2",
        "flaky attempt 3",
        "second",
    ]
    assert captured.pending() == [] and run_jobs().jobs == []


def test_failures_are_returned_with_their_traceback_after_the_retries(caplog):
    with capture_jobs():
        enqueue("flaky", fail_times=9, retries=1)
        enqueue("boom")
        done = run_jobs()
    assert [(job.function, job.status, job.attempts) for job in done.failures] == [
        ("boom", Status.FAILED, 1),
        ("flaky", Status.FAILED, 2),
    ]
    assert "ValueError: boom" in done.failures[0].error
    assert "RuntimeError: failing on purpose, attempt 2" in done.failures[1].error
    assert done.results == {}
    outcomes = [(r.task, r.outcome) for r in caplog.records if r.name == "tasks_app.inline"]
    assert outcomes == [("flaky", "retrying"), ("boom", "failed"), ("flaky", "failed")]


def test_a_job_over_its_timeout_is_cancelled():
    with capture_jobs():
        enqueue("too_slow", seconds=30)  # timeout=1
        (job,) = run_jobs().failures
    assert job.status == Status.FAILED and "exceeded its timeout of 1s" in job.error


def test_hooks_run_as_in_the_worker(settings):
    settings.SAQ = {
        **settings.SAQ,
        "HOOKS": {
            "startup": "tests.sampleapp.hooks.startup",
            "shutdown": "tests.sampleapp.hooks.shutdown",
            "before_process": "tests.sampleapp.hooks.before_process",
            "after_process": "tests.sampleapp.hooks.after_process",
        },
    }
    hooks.calls.clear()
    with capture_jobs():
        enqueue("read_context")
        (job,) = run_jobs().jobs
    assert job.result == "set at startup"
    assert hooks.calls == [
        ("startup", None),
        ("before_process", "read_context"),
        ("after_process", "read_context"),
        ("shutdown", None),
    ]


@pytest.mark.parametrize("result", [{1, 2}, float("inf")], ids=["set", "inf"])
def test_a_result_redis_could_not_store_fails_the_job(extra_task, result):
    async def returns_it(ctx) -> object:
        return result

    extra_task(returns_it, "returns_it", retries=0)
    with capture_jobs():
        enqueue("returns_it")
        (job,) = run_jobs().failures
    assert "cannot be stored as JSON" in job.error


def test_a_task_that_enqueues_itself_forever_is_stopped(extra_task):
    async def again(ctx) -> None:
        await aenqueue("again")

    extra_task(again, "again")
    with capture_jobs() as captured:
        enqueue("again")
        with pytest.raises(RuntimeError, match="does a task enqueue itself"):
            run_jobs(limit=50)
    assert len(captured) == 51


@pytest.mark.django_db(transaction=True)
def test_outside_a_capture_run_jobs_runs_what_redis_holds_with_a_real_worker(redis_db):
    ok = enqueue("add_note", text="from redis")
    bad = enqueue("boom")
    call_command("pausequeue", "default", stdout=StringIO())
    with pytest.raises(RuntimeError, match=r"Queue 'default' is paused .*manage.py resumequeue default"):
        run_jobs()
    call_command("resumequeue", "default", stdout=StringIO())
    done = run_jobs()
    assert {job.key: job.status for job in done.jobs} == {ok.key: Status.COMPLETE, bad.key: Status.FAILED}
    assert done.results[ok.key]["count"] == 1 and [job.key for job in done.failures] == [bad.key]
    assert Note.objects.filter(text="from redis").exists()


async def orm_backend_pid(ctx) -> int:
    """The PostgreSQL backend of the async ORM's connection (the thread async tasks query in)."""

    def pid() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    return await sync_to_async(pid)()


@pytest.fixture
def orm_pid_task(extra_task):
    extra_task(orm_backend_pid, "orm_backend_pid")


@pytest.mark.django_db(transaction=True)
def test_a_worker_after_inline_runs_still_cleans_its_own_connection(redis_db, orm_pid_task, worker_in_thread):
    # Inline runs query in the test's thread; the worker's connection hygiene must still watch the
    # worker's own ORM thread, or a connection that died between two jobs fails the second.
    with capture_jobs():
        enqueue("add_note", text="inline")
        run_jobs()
    first = enqueue("orm_backend_pid")
    pid = wait_until(lambda: (job := stored(first.key)) and job.status == Status.COMPLETE and job.result)
    params = {k: v for k, v in connection.get_connection_params().items() if k != "cursor_factory"}
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    second = enqueue("add_note", text="after the kill", retries=0)
    done = wait_until(lambda: (job := stored(second.key)) and job.status in TERMINAL_STATUSES and job)
    assert done.status == Status.COMPLETE, done.error


# --- immediate mode -------------------------------------------------------------------------------


def test_immediate_mode_runs_each_job_before_enqueue_returns(settings, redis_db, django_capture_on_commit_callbacks):
    immediate(settings)
    Note.objects.create(text="uncommitted")
    job = enqueue("add_note", text="now")
    assert job.status == Status.COMPLETE and job.result["count"] == 2
    assert asyncio.run(aenqueue("greet", name="ada")).result == "hello ada"
    failed = enqueue("boom")
    assert failed.status == Status.FAILED and "ValueError: boom" in failed.error
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_on_commit("add_note", text="at commit")
        assert not Note.objects.filter(text="at commit").exists()
    assert Note.objects.filter(text="at commit").exists()
    assert [job.status for job in enqueue_many("greet", [{"name": "a"}, {"name": "b"}])] == [Status.COMPLETE] * 2
    assert redis_db.keys("*") == []


def test_the_immediate_fixture(immediate_jobs):
    assert enqueue("greet", name="bob").result == "hello bob"


def test_a_capture_takes_precedence_over_immediate_mode(settings):
    immediate(settings)
    with capture_jobs() as captured:
        job = enqueue("add_note", text="later")
    assert job.status == Status.QUEUED and captured.tasks == ["add_note"]
    assert not Note.objects.exists()


def test_an_unknown_mode_is_a_check_error_and_refuses_to_enqueue(settings):
    settings.SAQ = {**settings.SAQ, "MODE": "eager"}
    errors = [message for message in checks.run_checks() if message.id == "tasks_app.E010"]
    assert len(errors) == 1 and "'queue', 'immediate'" in errors[0].msg
    with pytest.raises(Exception, match=r'SAQ\["MODE"\]=\'eager\''):
        enqueue("noop")


def test_immediate_mode_in_a_worker_is_a_warning(settings, monkeypatch):
    immediate(settings)
    assert "tasks_app.W002" not in [message.id for message in checks.run_checks()]
    monkeypatch.setattr(sys, "argv", ["manage.py", "runworker"])
    (warning,) = [message for message in checks.run_checks() if message.id == "tasks_app.W002"]
    assert warning.level == checks.WARNING and "test settings" in warning.hint
