"""Priorities on real Redis: higher first, FIFO within one; every way a job goes back on the queue keeps
its level; aging bounds a low priority's wait; a worker blocked on the queued list is woken for a job
listed at another level; a queue that uses none holds exactly the keys it always did."""

import asyncio

from saq.job import Job, Status

from tasks_app.engine import attempts, pausing, priorities, records, sweeping
from tasks_app.engine.queue import AtomicRedisQueue

from .conftest import blocked, run


def job(key: str, priority: int = 0, **options) -> Job:
    return Job(function="f", key=key, priority=priority, **options)


async def take_all(queue: AtomicRedisQueue, limit: int = 1000) -> list[str]:
    taken = []
    for _ in range(limit):
        found = await attempts.take(queue, "w1")
        if found is None:
            break
        taken.append(found.key)
    return taken


def test_higher_priorities_are_taken_first_and_fifo_within_one(open_queue):
    async def scenario():
        async with open_queue() as queue:
            for key, priority in [("a", 0), ("b", 5), ("c", -3), ("d", 5), ("e", 0), ("f", 100), ("g", -100)]:
                await records.submit(queue, job(key, priority))
            depth = await pausing.depth(queue)
            taken = await take_all(queue)
            stored = await queue.job("b")
            keys = {key.decode() for key in await queue.redis.keys(f"{queue.queued_key}*")}
            return depth, taken, stored, keys, await sweeping.check_consistency(queue)

    depth, taken, stored, keys, report = run(scenario())
    assert taken == ["f", "b", "d", "a", "e", "c", "g"]
    assert depth.queued == 7  # every level counted, the wake-up entry not
    assert (stored.priority, stored.status) == (5, Status.ACTIVE)  # the priority survives the take
    assert keys <= {"saq:default:queued:takes"}  # emptied levels leave no list and no level entry behind
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}


def test_a_queue_with_no_priorities_holds_only_its_usual_keys(open_queue):
    async def scenario():
        async with open_queue() as queue:
            for n in range(3):
                await records.submit(queue, job(f"k{n}"))
            before = sorted(key.decode() for key in await queue.redis.keys("saq:default:*"))
            raw = await queue.redis.get(queue.job_id("k0"))
            await take_all(queue)
            return before, raw

    before, raw = run(scenario())
    assert before == ["saq:default:incomplete", "saq:default:queued"]
    assert b"priority" not in raw  # a job of priority 0 is stored byte for byte as before


def test_a_retried_a_scheduled_and_a_relisted_job_keep_their_level(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, job("low", 0))
            await records.submit(queue, job("high", 7, retries=3, retry_delay=0))
            first = await attempts.take(queue, "w1")
            await attempts.retry_attempt(queue, first, "boom")  # back on its level, behind nothing
            retried = await take_all(queue, 1)
            await records.submit(queue, job("later", 9, scheduled=1))  # due at once, through the scheduler
            await records.submit(queue, job("plain", 0))
            await queue.schedule(0)
            scheduled = await take_all(queue, 1)
            return first.key, retried, scheduled, await take_all(queue)

    first, retried, scheduled, rest = run(scenario())
    assert (first, retried, scheduled) == ("high", ["high"], ["later"])
    assert rest == ["low", "plain"]


def test_a_low_priority_waits_at_most_age_every_takes_per_job_before_it(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, job("low", -50))
            taken: list[str] = []
            for n in range(3 * priorities.AGE_EVERY):
                # a stream of higher-priority work that never lets up
                await records.submit(queue, job(f"high{n}", 50))
                await records.submit(queue, job(f"mid{n}", 0))
                found = await attempts.take(queue, "w1")
                taken.append(found.key)
            return taken

    taken = run(scenario())
    assert "low" in taken
    assert taken.index("low") < priorities.AGE_EVERY  # nothing was enqueued before it: within AGE_EVERY takes
    # and the rest of the time the highest level wins
    assert (
        sum(key.startswith("high") for key in taken) >= len(taken) * (priorities.AGE_EVERY - 2) // priorities.AGE_EVERY
    )


def test_a_worker_blocked_on_the_queued_list_is_woken_for_a_job_at_another_level(open_queue, redis_db):
    async def scenario():
        async with open_queue() as queue, open_queue() as enqueuer:
            waiting = asyncio.ensure_future(attempts.take(queue, "w1", wait=5))
            await blocked(queue.redis)  # waiting in BLMOVE on the queued list
            loop = asyncio.get_running_loop()
            started = loop.time()
            await records.submit(enqueuer, job("urgent", 10))
            taken = await waiting
            elapsed = loop.time() - started
            return taken, elapsed, await queue.redis.lrange(queue.queued_key, 0, -1), await queue.sweep(lock=0)

    taken, elapsed, left, swept = run(scenario())
    assert taken.key == "urgent" and taken.status == Status.ACTIVE
    assert elapsed < 0.5  # not the 5 s BLMOVE timeout
    assert left == []  # the wake-up entry was consumed
    assert swept == []  # and never mistaken for a lost job


def test_a_wake_up_entry_left_by_a_dead_worker_is_dropped_by_the_sweep_not_counted_lost(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, job("urgent", 10))  # pushes a wake-up entry on the empty list
            # a worker's BLMOVE moved it, and the worker died before its next script
            await queue.redis.lmove(queue.queued_key, queue.active_key, "LEFT", "RIGHT")
            swept = await queue.sweep(lock=0)
            return swept, list(queue.evicted), await queue.redis.llen(queue.active_key), await take_all(queue)

    swept, evicted, active, taken = run(scenario())
    assert (swept, evicted, active, taken) == ([], [], 0, ["urgent"])


def test_the_priority_is_stored_after_the_header_and_read_back(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, job("p", -3))
            return await queue.redis.get(queue.job_id("p")), await queue.job("p")

    raw, stored = run(scenario())
    assert b'"scheduled": 0, "priority": -3, "function": "f"' in raw
    assert stored.priority == -3


def test_a_lone_job_at_a_negative_level_is_taken_by_the_next_take(open_queue):
    # Listing it pushed a wake-up entry on the empty queued list: the take that drops that entry must
    # still serve the level, not find the queued list empty and leave the worker blocked until its timeout.
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, job("low", -5))
            taken = await attempts.take(queue, "w1")
            return taken, await pausing.depth(queue), await sweeping.check_consistency(queue)

    taken, depth, report = run(scenario())
    assert taken is not None and (taken.key, taken.status) == ("low", Status.ACTIVE)
    assert depth.queued == 0
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}
