"""The sweep's search for index entries whose job record is gone (evicted, deleted): each is taken off
every list, logged once and counted once, in bounded Redis calls, even when Redis fails or the worker stops
mid-sweep."""

import asyncio
import logging
import time

import pytest
from redis.asyncio import from_url
from saq.job import Job

from tasks_app.engine import attempts, records, sweeping
from tasks_app.engine.outages import REDIS_ERRORS
from tasks_app.engine.queue import AtomicRedisQueue
from tasks_app.engine.worker import Worker
from tests.redis_server import RedisServer

from .conftest import run


def test_index_entries_whose_record_is_gone_are_removed_and_logged_once(open_queue, caplog):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", key="running"))
            await attempts.take(queue, "w")
            await records.submit(queue, Job("f", key="queued"))
            await records.submit(queue, Job("f", key="later", scheduled=2_000_000_000))
            await records.submit(queue, Job("f", key="kept"))
            await queue.redis.delete(*(queue.job_id(key) for key in ("running", "queued", "later")))
            first = await queue.sweep(lock=0)
            evicted = list(queue.evicted)
            again = await queue.sweep(lock=0)
            report = await sweeping.check_consistency(queue)
            return first, evicted, again, report, await queue.count("incomplete"), await attempts.take(queue, "w")

    with caplog.at_level(logging.ERROR):
        first, evicted, again, report, incomplete, taken = run(scenario())
    assert sorted(first) == sorted(evicted) and len(first) == 3 and again == []
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}
    assert incomplete == 1 and taken.key == "kept"
    lost = [r for r in caplog.records if getattr(r, "outcome", None) == "lost"]
    assert sorted(r.job_key for r in lost) == ["later", "queued", "running"]  # each once
    assert "maxmemory-policy noeviction" in lost[0].getMessage()


def test_only_entries_with_a_record_keep_a_burst_worker_waiting(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", key="gone"))
            await records.submit(queue, Job("f", key="soon", scheduled=int(time.time()) + 2))
            await queue.redis.delete(queue.job_id("gone"), queue.job_id("soon"))
            dangling = await sweeping.due_within(queue, 5)
            await records.submit(queue, Job("f", key="real", scheduled=int(time.time()) + 2))
            return dangling, await sweeping.due_within(queue, 5)

    assert run(scenario()) == (False, True)


def test_jobs_evicted_by_a_redis_under_memory_pressure_are_found_by_the_sweep(tmp_path):
    server = RedisServer(tmp_path, persistent=False).start()
    try:
        admin = server.client()
        admin.config_set("maxmemory", "2mb")
        # volatile-lru, and an expiry on each record only, so that Redis evicts job records and never the
        # queue's list or sets: under allkeys-lru it may evict the list as well (its LRU clock ticks once a
        # second, so every key is as old as the others), and then no entry is left to dangle.
        admin.config_set("maxmemory-policy", "volatile-lru")

        async def scenario():
            queue = AtomicRedisQueue(from_url(server.url), name="default")
            await queue.connect()
            try:
                for n in range(400):  # 400 jobs of 20 KB each: far more than 2 MB
                    job = Job("f", key=f"k{n}", kwargs={"blob": "x" * 20_000})
                    await records.submit(queue, job)
                    await queue.redis.expire(job.id, 3600)  # a candidate for eviction, long before it expires
                await queue.redis.config_set("maxmemory", "0")  # no more evictions from here: what was lost is lost
                before = await sweeping.check_consistency(queue)
                swept = await queue.sweep(lock=0)
                return before, swept, list(queue.evicted), await sweeping.check_consistency(queue)
            finally:
                await queue.disconnect()

        before, swept, evicted, after = run(scenario())
        assert admin.info("stats")["evicted_keys"] > 0
        assert before["dangling"]  # the index kept entries whose records were evicted
        assert sorted(evicted) == sorted(swept) == sorted(f"saq:job:default:{key}" for key in before["dangling"])
        assert after["dangling"] == []
        assert not any(admin.exists(job_id) for job_id in evicted)
        admin.close()
    finally:
        server.stop()


async def _lose_records(queue, count: int, every: int) -> set[str]:
    """``count`` queued jobs, then the records of every ``every``-th deleted (as an evicting Redis would):
    the ids of the lost ones."""
    await records.submit_many(queue, [Job("f", key=f"k{n}") for n in range(count)])
    gone = {queue.job_id(f"k{n}") for n in range(0, count, every)}
    await queue.redis.delete(*gone)
    return gone


def test_a_deep_index_is_searched_in_slices_over_several_sweeps(open_queue, monkeypatch):
    # 200 entries, 10 checked per Redis call and 50 per sweep: the search goes round in about four sweeps,
    # the next going on where the last stopped, and finds each entry whose record is gone exactly once.
    monkeypatch.setattr(sweeping, "GONE_SLICE", 10)
    monkeypatch.setattr(sweeping, "GONE_PER_SWEEP", 50)

    async def scenario():
        async with open_queue() as queue:
            gone = await _lose_records(queue, 200, every=10)
            found, sweeps, cursor_kept = [], 0, []
            while sweeps < 20:
                found.append(await queue.sweep(lock=0))
                sweeps += 1
                cursor_kept.append(bool(await queue.redis.exists(queue.namespace("sweep:cursor"))))
                if not cursor_kept[-1]:
                    break
            return gone, found, cursor_kept, await sweeping.check_consistency(queue), await queue.count("incomplete")

    gone, found, cursor_kept, report, incomplete = run(scenario())
    assert len(found[0]) < len(gone) and cursor_kept[0]  # the first sweep did not search the whole index
    assert 3 <= len(found) <= 10 and cursor_kept[-1] is False  # it went round in a few sweeps
    every = [job_id for swept in found for job_id in swept]
    assert sorted(every) == sorted(gone)  # each once
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}
    assert incomplete == 180


def test_many_gone_records_are_taken_off_the_lists_a_few_per_redis_call(open_queue, monkeypatch):
    # 300 queued, 60 of them gone. Each gone entry costs an LREM of every list (300 entries at first, fewer as
    # they go): a budget of 1,000 list entries a call lets 3 (then 4) go per call, the rest of the slice waiting
    # for the next call.
    monkeypatch.setattr(sweeping, "GONE_LIST_BUDGET", 1_000)
    budget_calls = []

    async def scenario():
        async with open_queue() as queue:
            gone = await _lose_records(queue, 300, every=5)
            keys = [queue.namespace("sweep:cursor"), queue.incomplete_key, queue.queued_key, queue.active_key]
            span = await queue.redis.llen(queue.queued_key) + await queue.redis.llen(queue.active_key)
            for _ in range(100):  # the script itself, call by call: what one call may hold Redis for
                ids, cursor, early = await queue._script("sweep_gone", keys, [1_000, sweeping.GONE_LIST_BUDGET])
                budget_calls.append((len(ids), int(early), span))
                span -= len(ids)
                if not int(early) and cursor in (b"0", "0"):
                    break
            else:
                pytest.fail("the search did not go round in 100 calls")
            queued = [entry.decode() for entry in await queue.redis.lrange(queue.queued_key, 0, -1)]
            return gone, queued, await sweeping.check_consistency(queue), await queue.count("incomplete")

    gone, queued, report, incomplete = run(scenario())
    removed = [count for count, _, _ in budget_calls]
    assert sum(removed) == len(gone)  # each once
    assert all(count <= max(1, 1_000 // span) for count, _, span in budget_calls)
    assert removed[0] == 3 and len(budget_calls) >= 15  # three or four a call: in many calls, not one
    assert not set(queued) & gone and len(queued) == 240
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}
    assert incomplete == 240


def test_a_call_that_stops_early_leaves_the_cursor_where_its_slice_began(open_queue, monkeypatch):
    # 1,000 entries: more than zset-max-listpack-entries, so the index is a hash table and ZSCAN goes through it
    # in real slices (a smaller set answers every ZSCAN whole, cursor 0). A budget of 1: every call that finds
    # two gone entries stops after the first, and the next call starts its slice again.
    monkeypatch.setattr(sweeping, "GONE_LIST_BUDGET", 1)

    async def scenario():
        async with open_queue() as queue:
            gone = await _lose_records(queue, 1000, every=4)
            encoding = await queue.redis.object("encoding", queue.incomplete_key)
            cursor_key = queue.namespace("sweep:cursor")
            keys = [cursor_key, queue.incomplete_key, queue.queued_key, queue.active_key]
            found, kept = [], []
            for _ in range(2_000):
                before = await queue.redis.get(cursor_key)
                ids, cursor, early = await queue._script("sweep_gone", keys, [10, sweeping.GONE_LIST_BUDGET])
                found += [job_id.decode() for job_id in ids]
                if int(early):
                    kept.append(await queue.redis.get(cursor_key) == before and cursor == (before or b"0"))
                elif cursor in (b"0", "0"):
                    break
            else:
                pytest.fail("the search did not go round in 2,000 calls")
            return encoding, gone, found, kept

    encoding, gone, found, kept = run(scenario())
    assert encoding in (b"skiplist", "skiplist")
    assert sorted(found) == sorted(gone)  # each once, all in one round: no slice's rest was passed over
    assert kept and all(kept)  # an early stop never moves the cursor


def test_a_sweep_keeps_calling_after_calls_that_stop_early(open_queue, monkeypatch):
    # A budget too small for two removals a call: each of the sweep's 5 calls takes one off and stops early.
    monkeypatch.setattr(sweeping, "GONE_LIST_BUDGET", 1)
    monkeypatch.setattr(sweeping, "GONE_SLICE", 10)
    monkeypatch.setattr(sweeping, "GONE_PER_SWEEP", 50)

    async def scenario():
        async with open_queue() as queue:
            gone = await _lose_records(queue, 100, every=4)
            swept = [await queue.sweep(lock=0) for _ in range(5)]
            return gone, swept, await sweeping.check_consistency(queue)

    gone, swept, report = run(scenario())
    assert [len(ids) for ids in swept] == [5] * 5  # five calls a sweep, one taken off each
    assert sorted(job_id for ids in swept for job_id in ids) == sorted(gone)  # each once
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}


@pytest.fixture
def one_per_call(monkeypatch):
    """A sweep of 5 calls (10 entries each) that take one gone entry off each (a budget of 1) and stop early."""
    monkeypatch.setattr(sweeping, "GONE_LIST_BUDGET", 1)
    monkeypatch.setattr(sweeping, "GONE_SLICE", 10)
    monkeypatch.setattr(sweeping, "GONE_PER_SWEEP", 50)


async def _counting_worker(url: str, counted: list[str]) -> Worker:
    """A worker (not started) of a connected queue on ``url``, that appends the key of each job it counts to
    ``counted``: disconnect its ``queue`` at the end."""
    queue = AtomicRedisQueue(from_url(url), name="default")
    await queue.connect()
    return Worker(queue, [], executor=None, observers=[lambda job, outcome, _: counted.append(job.key)])


def _before_sweep_call(monkeypatch, queue, number: int, act) -> None:
    """Call ``act()`` just before ``queue``'s ``number``-th sweep_gone call (a fault at that moment)."""
    script, calls = queue._script, []

    async def wrapped(name, keys, args):
        calls.append(name)
        if name == "sweep_gone" and calls.count(name) == number:
            act()
        return await script(name, keys, args)

    monkeypatch.setattr(queue, "_script", wrapped)


def test_entries_taken_off_before_redis_fails_mid_sweep_are_logged_and_counted(
    tmp_path, monkeypatch, one_per_call, caplog
):
    # Before the sweep's third call the redis-server stops: the two entries already taken off are logged and
    # counted as lost even though the sweep fails, and the sweeps after the restart find the rest, each once.
    server = RedisServer(tmp_path).start()  # appendfsync always: the restart keeps every write
    counted: list[str] = []

    async def scenario():
        worker = await _counting_worker(server.url, counted)
        queue = worker.queue
        try:
            gone = await _lose_records(queue, 40, every=4)
            with monkeypatch.context() as faults:
                _before_sweep_call(faults, queue, 3, server.stop)
                with pytest.raises(REDIS_ERRORS):
                    await worker._sweep(lock=0)
            before_restart = list(counted)
            server.start()
            for _ in range(2):  # five calls a sweep, one taken off each: the other 8 in two sweeps
                await worker._sweep(lock=0)
            return gone, before_restart, await sweeping.check_consistency(queue)
        finally:
            await queue.disconnect()

    try:
        with caplog.at_level(logging.ERROR):
            gone, before_restart, report = run(scenario())
    finally:
        server.stop()
    keys = {f"k{n}" for n in range(0, 40, 4)}
    assert len(gone) == 10 and len(before_restart) == 2 and set(before_restart) < keys
    assert sorted(counted) == sorted(keys)  # each once, across the failure
    logged = [r.job_key for r in caplog.records if getattr(r, "outcome", None) == "lost"]
    assert sorted(logged) == sorted(keys)
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}


def test_entries_taken_off_by_a_call_that_a_stopping_worker_cancels_are_logged_and_counted(
    tmp_path, monkeypatch, one_per_call
):
    # A worker's clean stop cancels its upkeep, perhaps while a sweep's call is in Redis. The script runs all the
    # same: what it took off is logged and counted once the reply comes, then the cancellation goes on. The
    # second call is held in Redis by CLIENT PAUSE WRITE until the sweep has been cancelled.
    server = RedisServer(tmp_path, persistent=False).start()
    admin = server.client()
    counted: list[str] = []

    async def scenario():
        worker = await _counting_worker(server.url, counted)
        queue = worker.queue
        try:
            await _lose_records(queue, 40, every=4)
            with monkeypatch.context() as faults:
                _before_sweep_call(faults, queue, 2, lambda: admin.execute_command("CLIENT", "PAUSE", 10_000, "WRITE"))
                sweep = asyncio.create_task(worker._sweep(lock=0))
                for _ in range(500):  # until the second call waits in Redis
                    await asyncio.sleep(0.01)
                    if admin.info("clients")["blocked_clients"]:
                        break
                else:
                    pytest.fail("the sweep's second call never reached Redis")
                sweep.cancel()
                await asyncio.sleep(0.05)  # the cancellation is delivered while the call still waits
                paused_count = len(counted)
                admin.execute_command("CLIENT", "UNPAUSE")
                with pytest.raises(asyncio.CancelledError):
                    await sweep
                at_cancel = list(counted)
            for _ in range(2):
                await worker._sweep(lock=0)
            return paused_count, at_cancel, await sweeping.check_consistency(queue)
        finally:
            await queue.disconnect()

    try:
        paused_count, at_cancel, report = run(scenario())
    finally:
        admin.close()
        server.stop()
    keys = {f"k{n}" for n in range(0, 40, 4)}
    assert paused_count == 0 and len(at_cancel) == 2  # the first call's entry, and the cancelled call's
    assert sorted(counted) == sorted(keys)  # each once
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}


def test_a_sweep_that_finds_more_than_ten_thousand_gone_counts_every_one(open_queue):
    # Index entries only (scheduled jobs whose records were evicted sit on no list): one sweep finds 12,000.
    counted: list[str] = []

    async def scenario():
        async with open_queue() as queue:
            worker = Worker(queue, [], executor=None, observers=[lambda job, outcome, _: counted.append(job.key)])
            ids = [queue.job_id(f"k{n}") for n in range(12_000)]
            await queue.redis.zadd(queue.incomplete_key, {job_id: 2_000_000_000 for job_id in ids})
            await worker._sweep(lock=0)
            return await queue.count("incomplete")

    assert run(scenario()) == 0
    assert len(counted) == len(set(counted)) == 12_000
