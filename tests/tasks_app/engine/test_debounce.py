"""Debounce on real Redis (a redis-server of the test's own whose clock the test moves): a burst of
enqueues of one key runs once, after the last, with the last arguments; ``debounce_max`` caps the wait;
racing enqueuers on several processes leave one job; a job already taken is never overwritten."""

import asyncio
import multiprocessing

import pytest
from saq.job import Job, Status

from tasks_app.engine import debounce, records

from .conftest import run

pytestmark = pytest.mark.django_db

KEY = "index:page:7"
MS = 0.001  # Redis stamps times in milliseconds; a due time is a score of seconds


def debounced(n: int, seconds: float = 2, maximum: float | None = None, key: str = KEY) -> Job:
    return debounce.mark(Job(function="add_note", kwargs={"text": f"save {n}"}, key=key), seconds, maximum)


async def due_at(queue, key: str = KEY) -> float | None:
    return await queue.redis.zscore(queue.incomplete_key, queue.job_id(key))


async def listed(queue) -> list[bytes]:
    """The queued list's job ids (not the wake-up entry an enqueue may push for blocked workers)."""
    wake = (queue.queued_key + ":wake").encode()
    return [entry for entry in await queue.redis.lrange(queue.queued_key, 0, -1) if entry != wake]


async def take(queue) -> list[str]:
    """Every job a worker could take now (after the scheduler ran), as ``(key, kwargs)``."""
    await queue.schedule(0)
    taken = []
    while reply := await queue._script("take", [queue.queued_key, queue.active_key, queue.paused_key], ["w1"]):
        job = queue.deserialize(reply[1])
        taken.append((job.key, job.kwargs))
    return taken


def test_a_burst_of_ten_enqueues_in_five_seconds_runs_once_after_the_last_with_its_arguments(
    clocked_queue, redis_clock
):
    async def scenario():
        async with clocked_queue() as queue:
            states = []
            for n in range(10):
                # The last save's moment on Redis's clock lies between these two reads (a read after the
                # burst would count the time the test took since: seconds on a loaded machine).
                before = redis_clock.now()
                job, state = await records.submit(queue, debounced(n))
                after = redis_clock.now()
                states.append(state)
                if n == 0:
                    first = job.queued
                assert await take(queue) == [], f"ran during the burst, after save {n}"
                redis_clock.shift(0.5)
            assert states == ["queued"] + ["debounced"] * 9
            assert before + 2 - MS <= await due_at(queue) <= after + 2 + MS
            stored = await queue.job(KEY)
            assert (stored.kwargs, stored.queued, stored.status) == ({"text": "save 9"}, first, Status.QUEUED)
            redis_clock.shift(1.2)  # 1.7 s after the last save: not yet
            assert await take(queue) == []
            redis_clock.shift(0.5)
            assert await take(queue) == [(KEY, {"text": "save 9"})]
            assert await take(queue) == []

    run(scenario())


def test_debounce_max_caps_the_wait_from_the_first_enqueue(clocked_queue, redis_clock):
    async def scenario():
        async with clocked_queue() as queue:
            saves = []
            for n in range(4):  # every second, each pushing the due time 2 s on: 0, 1, 2, 3
                saves.append(await records.submit(queue, debounced(n, seconds=2, maximum=3.5)))
                redis_clock.shift(1)
            start = saves[0][0].queued / 1000  # the first save, stamped by Redis
            assert await due_at(queue) == pytest.approx(start + 3.5, abs=MS)  # not 3 + 2
            redis_clock.shift(0.6)  # 4.6 s after the first: due by the ceiling though saves go on
            assert await take(queue) == [(KEY, {"text": "save 3"})]

    run(scenario())


def test_a_due_job_waiting_for_a_worker_runs_next_with_the_last_arguments(clocked_queue, redis_clock):
    async def scenario():
        async with clocked_queue() as queue:
            await records.submit(queue, debounced(1))
            redis_clock.shift(2.5)
            await queue.schedule(0)  # on the queued list now
            _, state = await records.submit(queue, debounced(2))
            assert state == "debounced"
            assert len(await listed(queue)) == 1  # where it stood, not queued twice
            assert await take(queue) == [(KEY, {"text": "save 2"})]

    run(scenario())


def test_an_active_job_is_not_touched_and_the_last_call_runs_once_after_it(clocked_queue, redis_clock):
    async def scenario():
        async with clocked_queue() as queue:
            await records.submit(queue, debounced(1))
            redis_clock.shift(2.5)
            assert await take(queue) == [(KEY, {"text": "save 1"})]
            running = await queue.job(KEY)
            for n in (2, 3, 4):
                _, state = await records.submit(queue, debounced(n))
                assert state == "deferred"
            stored = await queue.job(KEY)
            assert (stored.status, stored.kwargs, stored.attempts) == (Status.ACTIVE, {"text": "save 1"}, 1)
            assert await take(queue) == []
            await queue.finish(running, Status.COMPLETE, result=None)
            successor = await queue.job(KEY)
            assert (successor.status, successor.kwargs, successor.attempts) == (Status.QUEUED, {"text": "save 4"}, 0)
            redis_clock.shift(2.5)
            assert await take(queue) == [(KEY, {"text": "save 4"})]
            assert await take(queue) == []

    run(scenario())


def test_a_call_waiting_for_an_attempt_that_went_back_for_a_retry_is_superseded_by_a_later_call(
    clocked_queue, redis_clock
):
    async def scenario():
        async with clocked_queue() as queue:
            await records.submit(queue, debounced(1))
            redis_clock.shift(2.5)
            await take(queue)
            running = await queue.job(KEY)
            assert (await records.submit(queue, debounced(2)))[1] == "deferred"
            await queue.retry(running, "failed once")  # QUEUED again, on the queued list
            assert (await records.submit(queue, debounced(3)))[1] == "debounced"
            assert await take(queue) == [(KEY, {"text": "save 3"})]
            await queue.finish(await queue.job(KEY), Status.COMPLETE, result=None)
            redis_clock.shift(2.5)
            assert await take(queue) == []  # save 2 was superseded: it does not run after save 3

    run(scenario())


def test_an_ended_job_is_replaced_by_a_new_debounced_run(clocked_queue, redis_clock):
    async def scenario():
        async with clocked_queue() as queue:
            await records.submit(queue, debounced(1))
            redis_clock.shift(2.5)
            await take(queue)
            await queue.finish(await queue.job(KEY), Status.COMPLETE, result=None)
            _, state = await records.submit(queue, debounced(2))
            assert state == "queued"
            assert await take(queue) == []
            redis_clock.shift(2.5)
            assert await take(queue) == [(KEY, {"text": "save 2"})]

    run(scenario())


def test_a_plain_enqueue_of_the_key_still_deduplicates(clocked_queue, redis_clock):
    async def scenario():
        async with clocked_queue() as queue:
            await records.submit(queue, debounced(1))
            plain = Job(function="add_note", kwargs={"text": "plain"}, key=KEY)
            pending, state = await records.submit(queue, plain)
            assert (state, pending.kwargs) == ("exists", {"text": "save 1"})

    run(scenario())


def test_bulk_enqueues_are_debounced_too(clocked_queue, redis_clock):
    async def scenario():
        async with clocked_queue() as queue:
            results = await records.submit_many(queue, [debounced(n) for n in range(5)])
            assert [state for _, state in results] == ["queued"] + ["debounced"] * 4
            redis_clock.shift(2.5)
            assert await take(queue) == [(KEY, {"text": "save 4"})]

    run(scenario())


def _enqueue_from_a_process(url: str, who: int, calls: int, start) -> None:
    from redis.asyncio import from_url

    from tasks_app.engine.queue import AtomicRedisQueue

    async def burst() -> None:
        queue = AtomicRedisQueue(from_url(url))
        await queue.connect()
        try:
            for n in range(calls):
                job = debounced(n)
                job.kwargs = {"text": f"{who}:{n}"}
                await records.submit(queue, job)
        finally:
            await queue.disconnect()

    start.wait()
    asyncio.run(burst())


def test_racing_enqueuers_on_several_processes_leave_one_job_with_a_last_call(clocked_queue, redis_clock):
    processes, calls = 4, 40
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [
        context.Process(target=_enqueue_from_a_process, args=(redis_clock.url, who, calls, start))
        for who in range(processes)
    ]
    for process in workers:
        process.start()
    start.set()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0

    async def scenario():
        async with clocked_queue() as queue:
            assert await queue.redis.zcard(queue.incomplete_key) == 1
            assert await listed(queue) == []
            redis_clock.shift(2.5)
            taken = await take(queue)
            assert len(taken) == 1
            _, n = taken[0][1]["text"].split(":")
            assert int(n) == calls - 1, taken  # the last call of whichever process Redis applied last
            assert await take(queue) == []

    run(scenario())
