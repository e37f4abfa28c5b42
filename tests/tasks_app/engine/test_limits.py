"""Rate limits and concurrency leases in the take script, on real Redis (a Redis whose clock the test
moves, for the rate windows): a job over its limit stays QUEUED with its attempts unchanged and starts
as soon as the limit allows; a lease is given back by the script that ends or re-queues its job, the
sweep of a dead worker's job included; a worker idle for want of a lease is woken when one is freed."""

import asyncio

from saq.job import Job, Status

from tasks_app.engine import attempts, pausing, records, sweeping

from .conftest import blocked, run


def limited(key: str, limits: str, **options) -> Job:
    return Job(function="f", key=key, meta={"limits": limits}, **options)


async def take(queue, worker: str = "w1") -> Job | None:
    return await attempts.take(queue, worker)


async def take_reply(queue) -> list | bytes | None:
    return await queue._script("take", [queue.queued_key, queue.active_key, queue.paused_key], ["w1"])


def test_a_rate_limited_job_stays_queued_and_starts_when_the_window_allows(clocked_queue, redis_clock):
    async def scenario(clock):
        async with clocked_queue() as queue:
            for n in range(5):
                await records.submit(queue, limited(f"k{n}", "host:example.org,3,1000;"))
            first = [(await take(queue)).key for _ in range(3)]
            refused = await take_reply(queue)
            waiting = await queue.job("k3")
            depth = await pausing.depth(queue)
            clock.shift(0.6)
            still = await take(queue)
            clock.shift(0.45)  # 1.05 s after the first three started: three more may start
            later = [(await take(queue)).key for _ in range(2)]
            return first, refused, waiting, depth, still, later, await sweeping.check_consistency(queue)

    first, refused, waiting, depth, still, later, report = run(scenario(redis_clock))
    assert first == ["k0", "k1", "k2"]
    assert refused[0] == b"wait" and 900 <= int(refused[1]) <= 1000  # until the window frees a start
    assert (waiting.status, waiting.attempts, waiting.error) == (Status.QUEUED, 0, None)  # not a failure or retry
    assert depth.queued == 2  # parked jobs are queued jobs
    assert still is None
    assert later == ["k3", "k4"]  # first in, first out
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}


def test_a_limit_is_shared_by_every_job_of_its_key_and_only_them(clocked_queue, redis_clock):
    async def scenario():
        async with clocked_queue() as queue:
            await records.submit(queue, limited("a1", "host:a,1,60000;"))
            await records.submit(queue, limited("a2", "host:a,1,60000;"))  # another task, the same limiter
            await records.submit(queue, limited("b1", "host:b,1,60000;"))
            await records.submit(queue, Job(function="f", key="plain"))
            taken = []
            while (job := await take(queue)) is not None:
                taken.append(job.key)
            return taken

    assert run(scenario()) == ["a1", "b1", "plain"]


def test_at_most_n_run_at_once_per_key_and_the_finish_gives_the_lease_to_the_next(open_queue):
    async def scenario():
        async with open_queue() as queue:
            for key in ("f1", "f2", "f3"):
                await records.submit(queue, limited(key, ";feed:7,2"))
            await records.submit(queue, limited("other", ";feed:8,2"))
            one, two = await take(queue), await take(queue)
            third = await take(queue)  # feed:7 is full: the next job, of another feed, starts
            nothing = await take_reply(queue)
            lease = await queue.redis.hkeys("saq:limit:lease:feed:7")
            # the outcome's write gives the lease back, and its take hands it on at once
            one.worker_id = "w1"
            after = await attempts.end_attempt(queue, one, Status.COMPLETE, take_next=True)
            return one, two, third, nothing, lease, after, await queue.redis.hkeys("saq:limit:lease:feed:7")

    one, two, third, nothing, lease, after, lease_after = run(scenario())
    assert (one.key, two.key, third.key) == ("f1", "f2", "other")
    assert nothing[0] == b"wait"
    assert sorted(lease) == [one.id.encode(), two.id.encode()]
    assert after.key == "f3" and after.status == Status.ACTIVE and after.attempts == 1
    assert sorted(lease_after) == sorted([two.id.encode(), after.id.encode()])


def test_a_retry_gives_the_lease_back(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, limited("f1", ";feed:1,1", retries=3, retry_delay=0))
            await records.submit(queue, limited("f2", ";feed:1,1"))
            job = await take(queue)
            await attempts.retry_attempt(queue, job, "boom")
            return (await take(queue)).key, (await take(queue)), await queue.redis.hlen("saq:limit:lease:feed:1")

    second, third, held = run(scenario())
    assert second == "f2" and third is None and held == 1  # f1's retry waits for f2's lease


def test_the_sweep_of_a_dead_workers_job_frees_its_lease(clocked_queue, redis_clock):
    async def scenario(clock):
        async with clocked_queue() as queue:
            await records.submit(queue, limited("f1", ";feed:1,1", heartbeat=5, timeout=600, retries=3))
            await records.submit(queue, limited("f2", ";feed:1,1", heartbeat=5, timeout=600))
            held = await take(queue, "dead-worker")
            blocked = await take(queue, "w2")
            clock.shift(6)
            swept = await queue.sweep(lock=0)
            after = await take(queue, "w2")
            return held, blocked, swept, after, await queue.redis.hkeys("saq:limit:lease:feed:1")

    held, blocked, swept, after, lease = run(scenario(redis_clock))
    assert held.key == "f1" and blocked is None and swept == [held.id]
    assert after.key == "f2"  # waiting longest: first in line for the freed lease
    assert lease == [after.id.encode()]


def test_a_lease_whose_holder_is_gone_does_not_block_its_key(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, limited("f1", ";feed:1,1"))
            await records.submit(queue, limited("f2", ";feed:1,1"))
            held = await take(queue)
            await queue.redis.delete(held.id)  # its record expired or was deleted: nothing will give it back
            await queue.redis.zadd(f"{queue.queued_key}:limited", {"c:feed:1": 0})  # due for a try now
            return await take(queue)

    assert run(scenario()).key == "f2"


def test_a_worker_idle_for_want_of_a_lease_is_woken_when_it_is_freed(open_queue):
    async def scenario():
        async with open_queue() as queue, open_queue() as other:
            await records.submit(queue, limited("f1", ";feed:1,1"))
            await records.submit(queue, limited("f2", ";feed:1,1"))
            holder = await take(queue, "w1")
            waiting = asyncio.ensure_future(attempts.take(other, "w2", wait=5))
            await blocked(queue.redis)  # waiting in BLMOVE on the queued list
            loop = asyncio.get_running_loop()
            freed = loop.time()
            await attempts.end_attempt(queue, holder, Status.COMPLETE)
            taken = await waiting
            return taken, loop.time() - freed

    taken, elapsed = run(scenario())
    assert taken.key == "f2"
    assert elapsed < 0.5  # woken by the release, not by its recheck a second later


def test_an_idle_worker_sleeps_until_the_rate_allows_not_a_fixed_tick(open_queue):
    async def scenario():
        async with open_queue() as queue:
            for n in range(2):
                await records.submit(queue, limited(f"k{n}", "t,1,300;"))
            loop = asyncio.get_running_loop()
            first = await take(queue)
            started = loop.time()
            second = await attempts.take(queue, "w1", wait=5)
            if second is None:  # woken at the window's end: the next take starts it
                second = await take(queue)
            return first, second, loop.time() - started

    first, second, elapsed = run(scenario())
    assert (first.key, second.key) == ("k0", "k1")
    assert 0.2 <= elapsed < 0.6  # about 300 ms: the window, not the 5 s wait


def test_a_wait_of_one_millisecond_is_a_wait_not_for_ever(open_queue):
    # Redis truncates a blocking timeout to whole ms, and 0 blocks for ever.
    async def scenario():
        async with open_queue() as queue:
            loop = asyncio.get_running_loop()
            started = loop.time()
            await asyncio.wait_for(
                queue.redis.blmove("empty", "elsewhere", attempts.blocking_timeout(0.001), "LEFT", "RIGHT"), 5
            )
            return loop.time() - started

    assert run(scenario()) < 1


def test_a_parked_job_that_is_aborted_leaves_its_waiting_list_and_a_retry_lists_it_once(open_queue):
    def back(job: Job) -> Job:  # the dashboard's retry, as operations.back_for_one_more_attempt does it
        job.status, job.error = Status.QUEUED, None
        return job

    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, limited("f1", ";feed:1,1"))
            await records.submit(queue, limited("f2", ";feed:1,1"))
            holder = await take(queue)
            assert await take(queue) is None  # f2 parked: feed:1's one lease is held
            aborted, _ = await records.request_abort(queue, "f2", "not wanted")
            after_abort = await pausing.depth(queue), await sweeping.check_consistency(queue)
            await records.compare_and_set(queue, "f2", back)
            waiting = await queue.redis.lrange(f"{queue.queued_key}:waiting:c:feed:1", 0, -1)
            listed = await queue.redis.lrange(queue.queued_key, 0, -1) + waiting
            return holder, aborted, after_abort, listed, await pausing.depth(queue)

    holder, aborted, (depth, report), listed, depth_after_retry = run(scenario())
    assert holder.key == "f1" and aborted.status == Status.ABORTED
    assert depth.queued == 0  # an aborted job is not counted as queued
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}
    assert listed.count(aborted.id.encode()) == 1  # retried: listed once, not twice
    assert depth_after_retry.queued == 1
