"""A scheduled job (a delay, a debounce, a retry's back-off) is taken once it is due, not at the
workers' next scheduler tick: with nothing queued, a take lists the jobs due itself and otherwise waits
only until the first one is due, and an enqueue of a job due before any other wakes a blocked take.
Redis's clock is moved (``redis_clock``), so nothing here waits for time to pass."""

import asyncio

import pytest
from saq.job import Job

from tasks_app.engine import attempts, clock, records

from .conftest import blocked, run, watching

pytestmark = pytest.mark.django_db


def later(seconds: float, key: str) -> Job:
    return clock.delay(Job(function="add_note", kwargs={"text": key}, key=key), seconds)


def wake_entry(queue) -> bytes:
    return (queue.queued_key + ":wake").encode()


async def take_script(queue) -> list | bytes | None:
    keys = [queue.queued_key, queue.active_key, queue.paused_key, queue.incomplete_key]
    return await queue._script("take", keys, ["w1"])


def test_a_take_lists_a_due_job_itself_without_the_scheduler(clocked_queue, redis_clock):
    async def scenario():
        async with clocked_queue() as queue:
            await records.submit(queue, later(2, "in two seconds"))
            assert await attempts.take(queue, "w1") is None  # not due yet
            redis_clock.shift(2.5)
            job = await attempts.take(queue, "w1")  # no queue.schedule() in between
            assert job is not None and job.key == "in two seconds"

    run(scenario())


def test_with_nothing_queued_a_take_waits_only_until_the_first_scheduled_job(clocked_queue, redis_clock):
    async def scenario():
        async with clocked_queue() as queue:
            await records.submit(queue, later(60, "in a minute"))
            await records.submit(queue, later(2, "in two seconds"))
            state, ms = await take_script(queue)
            assert state == b"wait" and 1_900 <= int(ms) <= 2_000

    run(scenario())


def test_an_enqueue_due_before_any_other_wakes_a_blocked_take(clocked_queue, redis_clock):
    async def scenario():
        async with clocked_queue() as queue:
            await records.submit(queue, later(60, "in a minute"))
            waiting = asyncio.ensure_future(attempts.take(queue, "w1", wait=30))
            await blocked(queue.redis)
            await records.submit(queue, later(2, "in two seconds"))
            # Woken well before its 30 s: it heard that the new job is due in 2 s (and took nothing yet).
            assert await asyncio.wait_for(waiting, 10) is None
            assert await queue.redis.lrange(queue.queued_key, 0, -1) == []  # the wake-up entry was dropped
            # A job due after the first one wakes nobody: the takes already wait for the sooner one.
            await records.submit(queue, later(30, "in thirty seconds"))
            assert await queue.redis.lrange(queue.queued_key, 0, -1) == []
            redis_clock.shift(2.5)
            job = await attempts.take(queue, "w1", wait=1)
            assert job is not None and job.key == "in two seconds"

    run(scenario())


def test_a_job_queued_meanwhile_keeps_the_wake_up_entry_out_of_the_counts(clocked_queue, redis_clock):
    async def scenario():
        async with clocked_queue() as queue:
            await records.submit(queue, later(2, "in two seconds"))  # no take blocked: the entry stays
            assert await queue.redis.lrange(queue.queued_key, 0, -1) == [wake_entry(queue)]
            assert (await queue.count("queued")) == 0
            await records.submit(queue, Job(function="add_note", kwargs={"text": "now"}, key="now"))
            assert (await queue.count("queued")) == 1
            job = await attempts.take(queue, "w1")  # the entry is dropped on the way
            assert job is not None and job.key == "now"
            assert await queue.redis.lrange(queue.queued_key, 0, -1) == []

    run(scenario())


def test_saqs_own_dequeue_passes_over_the_wake_up_entry(clocked_queue, redis_clock):
    """SAQ's ``dequeue`` (its Worker, its CLI) moves the head of the queued list: a wake-up entry there is
    no job, and the job queued behind it is the one dequeued; the entry is left in no list."""

    async def scenario():
        async with clocked_queue() as queue:
            await records.submit(queue, later(2, "in two seconds"))  # pushes the wake-up entry
            await records.submit(queue, Job(function="add_note", kwargs={"text": "now"}, key="now"))
            job = await queue.dequeue(timeout=1)
            assert job is not None and job.key == "now"
            assert await queue.redis.lrange(queue.active_key, 0, -1) == [job.id.encode()]
            assert await queue.redis.lrange(queue.queued_key, 0, -1) == []

    run(scenario())


def test_a_take_that_listed_only_unrunnable_jobs_still_waits_for_the_next_scheduled_one(clocked_queue, redis_clock):
    """The jobs a take lists itself may all be unrunnable (a record evicted, a job parked by its limits):
    it then waits until the next scheduled job is due, not for the whole wait of an idle worker."""

    async def scenario():
        async with clocked_queue() as queue:
            await records.submit(queue, later(1, "evicted"))
            await records.submit(queue, later(3, "in three seconds"))
            await queue.redis.delete(queue.job_id("evicted"))  # a Redis under memory pressure
            redis_clock.shift(1.5)
            state, ms = await take_script(queue)
            assert state == b"wait" and 1_400 <= int(ms) <= 1_500

    run(scenario())


def test_the_scheduler_moves_many_due_jobs_in_slices_the_ones_due_first_first(clocked_queue, redis_clock, monkeypatch):
    # 25 due jobs, 10 per Redis call: one tick moves them all, each once, in the order they fell due, and
    # leaves the ones not due yet; a tick with the lock held by another moves none.
    from tasks_app.engine import queue as queue_module

    monkeypatch.setattr(queue_module, "SCHEDULE_SLICE", 10)

    async def scenario():
        async with clocked_queue() as queue:
            for n in range(25):
                await records.submit(queue, later(10 + n, f"due-{n:02d}"))
            await records.submit(queue, later(100, "not yet"))
            redis_clock.shift(40)
            async with watching(queue) as seen:
                held = await queue.schedule(lock=5)  # takes the tick's lock
            again = await queue.schedule(lock=5)
            slices = [command for command in seen if command.startswith("ZRANGEBYSCORE") and "LIMIT 0 10" in command]
            listed = await queue.redis.lrange(queue.queued_key, 0, -1)
            return held, again, [entry for entry in listed if entry != wake_entry(queue)], slices

    moved, again, listed, slices = run(scenario())
    assert len(slices) == 3  # 10, 10 and 5: no call moved more than 10
    assert [job_id.rsplit(":", 1)[-1] for job_id in moved] == [f"due-{n:02d}" for n in range(25)]
    assert again == []
    assert [entry.decode() for entry in listed] == moved
