"""Enqueueing from code: enqueue, aenqueue, enqueue_on_commit and its outbox; the deprecated enqueue_sync."""

import asyncio
import inspect
from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models.functions import Now
from django.test import override_settings
from saq.job import Status

import tasks_app
from tasks_app import aenqueue, enqueue, enqueue_many, enqueue_on_commit, enqueue_sync
from tasks_app.models import OutboxEntry
from tasks_app.registry import TaskArgumentError, TaskNotFound
from tests.queue_state import count, listed, stored
from tests.sampleapp.models import Note
from tests.sampleapp.tasks import add_note

from .helpers import run_burst

pytestmark = pytest.mark.django_db(transaction=True)


def saq_with_redis_at(url: str):
    from django.conf import settings

    return override_settings(SAQ={**settings.SAQ, "QUEUES": {"default": {"URL": url}}})


def test_enqueue_returns_the_queued_job(redis_db):
    job = enqueue("greet", name="ada")
    assert job.status == Status.QUEUED and job.function == "greet"
    assert listed(job.key, "queued") and count("queued") == 1


def test_enqueue_accepts_the_function_itself(redis_db):
    job = enqueue(add_note, text="by reference")
    assert job.function == "add_note"


def test_aenqueue_is_the_async_call(redis_db):
    from tasks_app.enqueueing.connections import disconnect_all

    async def go():
        try:
            return await aenqueue("greet", name="ada", timeout=9, retries=0)
        finally:
            await disconnect_all()

    job = asyncio.run(go())
    assert (job.timeout, job.retries) == (9, 1)
    assert redis_db.exists(job.id)


def test_the_names_are_django_tasks_names_sync_then_async():
    assert not inspect.iscoroutinefunction(tasks_app.enqueue)
    assert inspect.iscoroutinefunction(tasks_app.aenqueue)
    assert not inspect.iscoroutinefunction(tasks_app.enqueue_many)
    assert inspect.iscoroutinefunction(tasks_app.aenqueue_many)


def test_enqueue_sync_is_a_deprecated_alias_of_enqueue_that_warns(redis_db):
    deprecated = r"enqueue_sync\(\) is deprecated.*call tasks_app\.enqueue\(\)"
    with pytest.warns(DeprecationWarning, match=deprecated) as caught:
        job = enqueue_sync("greet", name="ada", key="old-name", timeout=9)
    assert caught[0].filename == __file__  # the warning points at the caller's line, not at tasks_app
    assert job.function == "greet" and job.kwargs == {"name": "ada"} and job.timeout == 9
    assert listed("old-name", "queued") and count("queued") == 1


def test_code_that_awaits_the_old_async_enqueue_is_told_to_await_aenqueue(redis_db):
    async def written_for_the_old_names():
        return await enqueue("greet", name="ada")

    with pytest.raises(RuntimeError, match=r"inside async code use `await aenqueue\(\.\.\.\)`"):
        asyncio.run(written_for_the_old_names())
    assert redis_db.dbsize() == 0


def test_the_sync_bulk_call_in_async_code_names_aenqueue_many(redis_db):
    async def misuse():
        enqueue_many("greet", [{"name": "a"}])

    with pytest.raises(RuntimeError, match=r"`await aenqueue_many\(\.\.\.\)`"):
        asyncio.run(misuse())
    assert redis_db.dbsize() == 0


def test_validation_happens_before_redis(redis_db):
    with pytest.raises(TaskNotFound):
        enqueue("nope")
    with pytest.raises(TaskArgumentError, match="missing a required argument"):
        enqueue("greet")
    with pytest.raises(TaskArgumentError, match="JSON-serializable"):
        enqueue("greet", name=object())
    assert redis_db.dbsize() == 0


def test_on_commit_returns_the_key_now_and_enqueues_after_commit(redis_db):
    with transaction.atomic():
        key = enqueue_on_commit("add_note", text="after commit")
        assert stored(key) is None  # not before the commit
        assert OutboxEntry.objects.filter(job_key=key).exists()  # but recorded in the transaction
    assert stored(key) is not None
    assert not OutboxEntry.objects.exists()  # delivered, so the outbox row is gone
    run_burst()
    assert Note.objects.filter(text="after commit").exists()


def test_on_commit_rollback_enqueues_nothing(redis_db):
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit("add_note", text="never")
        raise RuntimeError("roll back")
    assert redis_db.dbsize() == 0
    assert not OutboxEntry.objects.exists()


def test_on_commit_validates_at_once(redis_db):
    with pytest.raises(TaskArgumentError), transaction.atomic():
        enqueue_on_commit("add_note", colour="red")
    assert not OutboxEntry.objects.exists()


def test_redis_down_at_commit_loses_nothing(redis_db):
    with saq_with_redis_at("redis://127.0.0.1:1/0"), transaction.atomic():
        key = enqueue_on_commit("add_note", text="kept safe")
    # The save committed, Redis refused the job: the outbox keeps it.
    entry = OutboxEntry.objects.get(job_key=key)
    assert entry.attempts == 1 and entry.last_error
    assert stored(key) is None
    # Redis is back: the worker drains the outbox and runs the job.
    run_burst()
    assert not OutboxEntry.objects.exists()
    assert Note.objects.filter(text="kept safe").exists()


def test_enqueue_many_validates_every_call_then_enqueues_in_order(redis_db):
    from tasks_app import enqueue_many

    with pytest.raises(TaskArgumentError):
        enqueue_many("greet", [{"name": "a"}, {"nom": "b"}])
    assert count("incomplete") == 0  # nothing went, not even the valid first call
    jobs = enqueue_many("greet", [{"name": str(i)} for i in range(1200)], keys=[f"k{i}" for i in range(1200)])
    assert [job.key for job in jobs] == [f"k{i}" for i in range(1200)] and count("queued") == 1200
    again = enqueue_many("greet", [{"name": "x"}], keys=["k7"])
    assert again[0].kwargs == {"name": "7"} and count("queued") == 1200  # a pending key returns its job


def test_enqueue_many_on_commit_is_one_outbox_write_and_survives_redis_down(redis_db):
    from tasks_app import enqueue_many_on_commit

    with saq_with_redis_at("redis://127.0.0.1:1/0"), transaction.atomic():
        keys = enqueue_many_on_commit("add_note", [{"text": f"bulk {i}"} for i in range(30)])
    assert OutboxEntry.objects.count() == 30 and all(stored(key) is None for key in keys)
    run_burst()  # Redis is back: the drain delivers them all
    assert Note.objects.filter(text__startswith="bulk ").count() == 30
    assert not OutboxEntry.objects.exists()
    with transaction.atomic():
        keys = enqueue_many_on_commit("add_note", [{"text": "after commit"}] * 3)
        assert all(stored(key) is None for key in keys)
    assert all(stored(key) is not None for key in keys) and not OutboxEntry.objects.exists()


# --- rows that cannot become jobs: set aside, never blocking the others -----------------------------


def drain_now() -> int:
    from tasks_app.enqueueing import outbox
    from tasks_app.enqueueing.connections import disconnect_all

    async def go():
        try:
            return await outbox.drain(grace=0)
        finally:
            await disconnect_all()

    return asyncio.run(go())


def outbox_row(queue: str = "default", payload: dict | None = None) -> OutboxEntry:
    """An outbox row as enqueue_on_commit leaves it, with ``payload`` merged into its job."""
    from tasks_app.enqueueing.building import build_job

    built = build_job("noop")
    return OutboxEntry.objects.create(
        job_key=built.job.key, queue=queue, payload={**built.job.to_dict(), **(payload or {})}
    )


def set_aside_logs(caplog, entry: OutboxEntry) -> list:
    return [r for r in caplog.records if r.name == "tasks_app.outbox" and getattr(r, "job_key", None) == entry.job_key]


def test_a_row_for_a_removed_queue_is_set_aside_and_the_others_are_delivered(redis_db, caplog):
    from django.conf import settings
    from django.utils import timezone

    stale, good = outbox_row(queue="old-queue"), outbox_row()
    caplog.set_level("DEBUG", logger="tasks_app.outbox")
    assert drain_now() == 1
    assert stored(good.job_key) is not None and not OutboxEntry.objects.filter(pk=good.pk).exists()
    stale.refresh_from_db()  # kept, with what to do about it
    assert stale.attempts == 1 and stale.retry_at > timezone.now()
    assert "queue 'old-queue' is not in SAQ['QUEUES']" in stale.last_error
    assert "add it back or delete this outbox entry" in stale.last_error
    (logged,) = set_aside_logs(caplog, stale)
    assert logged.levelname == "ERROR" and logged.queue == "old-queue" and logged.outbox_id == stale.pk

    # Later drains leave it alone until its retry time: no cost, no new log line.
    later = outbox_row()
    assert drain_now() == 1 and stored(later.job_key) is not None
    stale.refresh_from_db()
    assert stale.attempts == 1 and len(set_aside_logs(caplog, stale)) == 1

    # The queue is back in the settings: the next drain delivers the row at once.
    queues = {**settings.SAQ["QUEUES"], "old-queue": settings.SAQ["QUEUES"]["default"]}
    with override_settings(SAQ={**settings.SAQ, "QUEUES": queues}):
        assert drain_now() == 1
        assert stored(stale.job_key, queue="old-queue") is not None
    assert not OutboxEntry.objects.exists()


def test_a_row_whose_payload_saq_refuses_is_set_aside_and_the_others_are_delivered(redis_db, caplog):
    unfit = outbox_row(payload={"field_saq_dropped": 1})  # Job(**payload) fails, as after a SAQ upgrade
    refused = outbox_row(payload={"queue": "default"})  # makes a Job, but submit_many refuses it
    good = outbox_row()
    caplog.set_level("ERROR", logger="tasks_app.outbox")
    assert drain_now() == 1
    assert stored(good.job_key) is not None
    unfit.refresh_from_db()
    assert unfit.attempts == 1 and unfit.retry_at is not None
    assert "the payload no longer makes a SAQ Job (TypeError:" in unfit.last_error
    assert "field_saq_dropped" in unfit.last_error and "delete this outbox entry" in unfit.last_error
    refused.refresh_from_db()
    assert refused.attempts == 1 and "SAQ refused the job" in refused.last_error
    assert stored(refused.job_key) is None
    assert len(set_aside_logs(caplog, unfit)) == len(set_aside_logs(caplog, refused)) == 1
    assert set(OutboxEntry.objects.values_list("pk", flat=True)) == {unfit.pk, refused.pk}  # nothing deleted


def test_a_redis_outage_sets_no_row_aside(redis_db):
    from redis.exceptions import ConnectionError as RedisConnectionError

    stale, good = outbox_row(queue="old-queue"), outbox_row()
    with saq_with_redis_at("redis://127.0.0.1:1/0"), pytest.raises((RedisConnectionError, OSError)):
        drain_now()  # the worker's upkeep reports the outage once
    good.refresh_from_db()
    assert (good.attempts, good.last_error, good.retry_at) == (0, "", None)
    stale.refresh_from_db()
    assert stale.attempts == 1 and "old-queue" in stale.last_error  # its own problem, Redis or not
    assert drain_now() == 1 and stored(good.job_key) is not None  # Redis is back


def test_the_commit_time_delivery_sets_aside_only_the_row_that_cannot_become_a_job(redis_db):
    from tasks_app.enqueueing import outbox

    stale, good = outbox_row(queue="old-queue"), outbox_row()
    outbox.deliver_many([stale, good])
    assert stored(good.job_key) is not None
    assert list(OutboxEntry.objects.values_list("pk", "attempts")) == [(stale.pk, 1)]


def test_a_drain_whose_clock_is_ahead_leaves_rows_inside_their_grace(redis_db):
    """The grace that leaves a fresh row to its own on-commit delivery is measured on the database's
    clock: a worker whose clock is 5 minutes ahead must not take rows a web process is still delivering
    (both would enqueue the job, and it would run twice)."""
    import time_machine
    from django.utils import timezone

    from tasks_app.enqueueing import outbox

    fresh = outbox_row()  # as a web process leaves it between its commit and its own delivery

    async def drain_skewed():
        from tasks_app.enqueueing.connections import disconnect_all

        try:
            with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=True):
                return await outbox.drain(grace=outbox.DRAIN_GRACE_S)
        finally:
            await disconnect_all()

    assert asyncio.run(drain_skewed()) == 0
    assert OutboxEntry.objects.filter(pk=fresh.pk).exists() and stored(fresh.job_key) is None
    OutboxEntry.objects.filter(pk=fresh.pk).update(created=Now() - timedelta(seconds=outbox.DRAIN_GRACE_S + 1))
    assert drain_now() == 1 and stored(fresh.job_key) is not None  # past its grace: delivered


@pytest.mark.parametrize("late", ["the commit's delivery", "the drain"])
def test_a_row_delivered_twice_runs_its_job_once_even_after_it_ended(redis_db, late):
    """A web process's delivery comes late (a loaded or paused host): a worker's drain takes the row past
    its grace, both enqueue, and the first one's job has run and ended before the second lands. The
    second must find that job, not enqueue the row's job anew (it would run twice)."""
    from tasks_app.enqueueing import outbox
    from tasks_app.enqueueing.building import build_job

    entry = outbox.record(build_job("add_note", {"text": "once"}))  # committed; its delivery not yet made
    if late == "the commit's delivery":
        OutboxEntry.objects.filter(pk=entry.pk).update(created=Now() - timedelta(seconds=outbox.DRAIN_GRACE_S + 1))
        assert drain_now() == 1
        run_burst()
        outbox.deliver(entry)  # the web process's own delivery, of the row it still holds in memory
    else:
        row = OutboxEntry.objects.get(pk=entry.pk)  # as the drain read (and locked) it
        outbox.deliver(entry)
        run_burst()
        OutboxEntry.objects.create(job_key=row.job_key, queue=row.queue, payload=row.payload)  # the drain's copy
        assert drain_now() == 1  # delivered: the job it wrote is found, and the row goes
    run_burst()
    assert Note.objects.filter(text="once").count() == 1
    assert stored(entry.job_key).status == Status.COMPLETE and not OutboxEntry.objects.exists()
    # A later call with the same key is new work, and runs.
    again = enqueue("add_note", text="once", key=entry.job_key)
    assert again.status == Status.QUEUED
    run_burst()
    assert Note.objects.filter(text="once").count() == 2


NOTE = (
    'tasks_app: queue \'default\' is at redis://127.0.0.1:1/0 (SAQ["QUEUES"]["default"]["URL"]{source}): '
    "start that Redis, or fix the setting."
)


@pytest.mark.parametrize("call", ["enqueue", "aenqueue", "enqueue_many", "aenqueue_many"])
def test_redis_down_is_redis_pys_error_with_a_note_naming_the_queue_and_its_setting(call):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from tasks_app import aenqueue_many, conf

    source = conf.setting_name("QUEUES", "default", "URL").removeprefix('SAQ["QUEUES"]["default"]["URL"]')
    calls = {
        "enqueue": lambda: enqueue("noop"),
        "aenqueue": lambda: asyncio.run(aenqueue("noop")),
        "enqueue_many": lambda: enqueue_many("noop", [{}, {}]),
        "aenqueue_many": lambda: asyncio.run(aenqueue_many("noop", [{}, {}])),
    }
    with saq_with_redis_at("redis://127.0.0.1:1/0"), pytest.raises(RedisConnectionError) as caught:
        calls[call]()
    assert caught.value.__notes__ == [NOTE.format(source=source)]  # once, and the error's type is redis-py's
