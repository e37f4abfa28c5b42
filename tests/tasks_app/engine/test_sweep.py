"""The sweep resolves jobs whose worker is gone, by heartbeat, and leaves live workers' jobs alone."""

import logging
import time

import pytest
from saq.job import Job, Status

from tasks_app.engine import attempts, clock, records, sweeping
from tasks_app.engine.sweeping import HELD

from .conftest import run


async def held_and_touched(queue, traveller, every: float, times: int, held_after: float = 0) -> list:
    """Job "k" taken and held by "live-worker" (``held_after`` s into its run), then touched ``times`` times,
    ``every`` s apart, with a sweep after each touch; returns what those sweeps swept."""
    job = await attempts.take(queue, "live-worker")
    traveller.shift(held_after)
    await attempts.hold(queue, "live-worker", job)
    swept = []
    for _ in range(times):
        traveller.shift(every)
        await attempts.touch(queue, "live-worker", [(job, True)])
        swept += await queue.sweep(lock=0)
    return swept


def test_a_dead_workers_job_is_requeued_once_its_heartbeat_lapses(clocked_queue, redis_clock, caplog):
    async def scenario(traveller):
        async with clocked_queue() as queue:
            await records.submit(queue, Job("f", key="k", heartbeat=30, timeout=600, retries=3))
            await attempts.take(queue, "dead-worker")
            traveller.shift(29)
            early = await queue.sweep(lock=0)
            traveller.shift(2)
            late = await queue.sweep(lock=0)
            return early, late, await queue.job("k"), await sweeping.check_consistency(queue)

    with caplog.at_level(logging.WARNING):
        early, late, stored, report = run(scenario(redis_clock))
    assert early == [] and late == [stored.id]
    assert (stored.status, stored.attempts) == (Status.QUEUED, 1)
    assert stored.error.startswith("swept: no heartbeat from worker dead-worker for 31.0s (heartbeat 30s)")
    assert "re-queued for attempt 2 of 3" in caplog.text  # the true reason, in the log line too
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}


def test_a_job_with_no_attempts_left_ends_aborted(clocked_queue, redis_clock):
    async def scenario(traveller):
        async with clocked_queue() as queue:
            await records.submit(queue, Job("f", key="k", heartbeat=5, timeout=600, retries=1))
            await attempts.take(queue, "dead-worker")
            traveller.shift(6)
            await queue.sweep(lock=0)
            return await queue.job("k"), await queue.redis.ttl(queue.job_id("k"))

    stored, ttl = run(scenario(redis_clock))  # it moves Redis's clock, the one the sweep reads
    assert stored.status == Status.ABORTED and "no attempts left" in stored.error
    assert ttl > 0


def test_an_aborting_job_whose_worker_died_ends_aborted_and_frees_its_key(clocked_queue, redis_clock):
    async def scenario(traveller):
        async with clocked_queue() as queue:
            await records.submit(queue, Job("f", key="k", heartbeat=5, timeout=600, retries=3))
            await attempts.take(queue, "dead-worker")
            await records.request_abort(queue, "k", "Aborted from the dashboard by ops.")
            _, state = await records.submit(queue, Job("f", key="k", kwargs={"next": True}))
            traveller.shift(6)
            await queue.sweep(lock=0)
            return state, await attempts.take(queue, "live-worker"), await sweeping.check_consistency(queue)

    state, successor, report = run(scenario(redis_clock))  # it moves Redis's clock, the one the sweep reads
    assert state == "deferred"
    assert successor.kwargs == {"next": True}  # the new work runs once the dead job is resolved
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}


def test_past_its_timeout_a_heartbeating_job_is_left_to_its_worker_for_a_grace_period(clocked_queue, redis_clock):
    async def scenario(traveller):
        async with clocked_queue() as queue:
            await records.submit(queue, Job("f", key="k", timeout=1, heartbeat=30))
            job = await attempts.take(queue, "live-worker")
            swept = []
            for _ in range(8):  # the worker heartbeats; its own timeout handling is due
                traveller.shift(1)
                await attempts.touch(queue, "live-worker", [(job, True)])
                swept += await queue.sweep(lock=0)
            traveller.shift(5)
            await attempts.touch(queue, "live-worker", [(job, True)])
            swept += await queue.sweep(lock=0)  # 14 s in: past timeout + grace, so the worker is broken
            return swept, await queue.job("k")

    swept, stored = run(scenario(redis_clock))  # it moves Redis's clock, the one the sweep reads
    assert len(swept) == 1
    assert "past its 1s timeout" in stored.error


def test_past_its_timeout_a_job_held_by_its_heartbeating_worker_is_not_swept(clocked_queue, redis_clock):
    # Its task was cancelled and has not returned (a sync task's thread): its worker holds it.
    async def scenario(traveller):
        async with clocked_queue() as queue:
            await records.submit(queue, Job("f", key="k", timeout=1, heartbeat=30, retries=3))
            swept = await held_and_touched(queue, traveller, every=1, times=30)
            traveller.shift(31)  # its worker died: the heartbeat lapses
            return swept, await queue.sweep(lock=0), await queue.job("k")

    swept, late, stored = run(scenario(redis_clock))  # it moves Redis's clock, the one the sweep reads
    assert swept == [] and late == [stored.id]
    assert stored.status == Status.QUEUED and "no heartbeat" in stored.error


def test_a_held_job_without_a_heartbeat_is_swept_once_its_worker_stops_touching_it(clocked_queue, redis_clock):
    # Held at a stop or past its timeout, then its worker SIGKILLed: the timeout rule passes a held job over,
    # and with no heartbeat nothing else judged it, so it stayed active for good.
    async def scenario(traveller):
        async with clocked_queue() as queue:
            await records.submit(queue, Job("f", key="k", timeout=5, heartbeat=0, retries=3))
            # Held long past its timeout (the hold touches it), then touched every HELD_SILENCE_S / 4.
            swept = await held_and_touched(queue, traveller, every=7.5, times=12, held_after=100)
            traveller.shift(sweeping.HELD_SILENCE_S - 1)
            early = await queue.sweep(lock=0)
            traveller.shift(2)  # its worker died
            return swept, early, await queue.sweep(lock=0), await queue.job("k")

    swept, early, late, stored = run(scenario(redis_clock))  # it moves Redis's clock, the one the sweep reads
    assert swept == [] and early == [] and late == [stored.id]
    assert (stored.status, stored.attempts) == (Status.QUEUED, 1)
    assert stored.error.startswith("swept: no heartbeat from worker live-worker for 31.0s (heartbeat 30s)")


def test_a_held_mark_left_from_an_earlier_attempt_says_nothing_of_the_next(clocked_queue, redis_clock):
    # The sweep re-queued a held job with its mark, and the next attempt (on a worker that never held it) was
    # swept again 30 s after its take, still running, and the timeout rule no longer applied to it.
    async def scenario(traveller):
        async with clocked_queue() as queue:
            await records.submit(queue, Job("f", key="k", timeout=60, heartbeat=0, retries=3))
            job = await attempts.take(queue, "killed-worker")
            await attempts.hold(queue, "killed-worker", job)
            traveller.shift(sweeping.HELD_SILENCE_S + 1)
            first = await queue.sweep(lock=0)  # its worker is gone: re-queued
            requeued = await queue.job("k")
            await attempts.take(queue, "new-worker")
            traveller.shift(sweeping.HELD_SILENCE_S + 1)  # a held job this silent would be swept
            early = await queue.sweep(lock=0)
            traveller.shift(60 + sweeping.TIMEOUT_GRACE_S - sweeping.HELD_SILENCE_S)  # past its timeout's grace
            return first, requeued, early, await queue.sweep(lock=0), await queue.job("k")

    first, requeued, early, late, stored = run(scenario(redis_clock))
    assert first == [requeued.id] and HELD not in requeued.meta
    assert early == [] and late == [stored.id]  # judged by its timeout, as any job without a heartbeat
    assert (stored.status, stored.attempts) == (Status.QUEUED, 2) and "past its 60s timeout" in stored.error
    held = Job("f", key="h", worker_id="w", attempts=2, meta={HELD: sweeping.held_mark("w", 1)})
    assert not sweeping.is_held(held)  # a mark of attempt 1 on attempt 2


def test_a_live_workers_job_is_never_swept(clocked_queue, redis_clock):
    async def scenario(traveller):
        async with clocked_queue() as queue:
            await records.submit(queue, Job("f", key="k", heartbeat=3, timeout=600))
            job = await attempts.take(queue, "live-worker")
            swept = []
            for _ in range(20):
                traveller.shift(1)
                await attempts.touch(queue, "live-worker", [(job, True)])
                swept += await queue.sweep(lock=0)
            return swept, await queue.job("k")

    swept, stored = run(scenario(redis_clock))  # it moves Redis's clock, the one the sweep reads
    assert swept == [] and stored.status == Status.ACTIVE


def test_a_malformed_record_does_not_stop_the_sweep_of_the_others(clocked_queue, redis_clock, caplog):
    async def scenario(traveller):
        async with clocked_queue() as queue:
            await records.submit(queue, Job("f", key="odd", heartbeat=30, timeout=600, retries=3))
            await records.submit(queue, Job("f", key="k", heartbeat=30, timeout=600, retries=3))
            odd = await attempts.take(queue, "dead-worker")
            await attempts.take(queue, "dead-worker")
            odd.heartbeat = "30"  # as a client writing SAQ's record by hand could leave it
            await queue.redis.set(odd.id, queue.serialize(odd))
            traveller.shift(31)
            swept = await queue.sweep(lock=0)
            return swept, await queue.job("k"), await queue.job("odd")

    with caplog.at_level(logging.ERROR):
        swept, stored, odd = run(scenario(redis_clock))
    assert swept == [stored.id] and stored.status == Status.QUEUED
    assert odd.status == Status.ACTIVE
    assert f"Cannot sweep job {odd.key}: its record has malformed fields" in caplog.text


@pytest.mark.parametrize("host_offset_s", [-(10**9), -600])
def test_a_job_saqs_own_worker_starts_is_timed_by_redis_clock_not_its_hosts(open_queue, host_offset_s):
    # SAQ's own Worker stamps ``started`` from its host's clock, then marks the job ACTIVE with update(). A
    # host clock far behind made the sweep's timeout rule see a job of 10 s running for years, and end it
    # ABORTED while it ran (SAQ's test_worker.py::TestHttpRedis::test_schedule, whose clock is mocked to
    # 1970, failed a CI run so). The update stamps the attempt's start on Redis's clock, as a take does.
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", key="saq-run", timeout=10))
            job = await queue.dequeue()
            job.started = int((time.time() + host_offset_s) * 1000)
            job.attempts += 1
            job.worker_id = "saq-worker"
            await job.update(status=Status.ACTIVE)
            redis_now_ms = await clock.redis_now_ms(queue.redis)
            swept = await queue.sweep(lock=0)
            return swept, await queue.job("saq-run"), redis_now_ms

    swept, stored, redis_now_ms = run(scenario())
    assert swept == [] and stored.status == Status.ACTIVE
    assert abs(stored.started - redis_now_ms) < 5_000
