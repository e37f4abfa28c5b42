"""Each job state change is one compare-and-set: checked against real Redis, including under races."""

import asyncio
import dataclasses
import time

import pytest
from saq.job import Job, Status
from saq.queue.redis import RedisQueue

from tasks_app.engine import attempts, pausing, records, sweeping
from tasks_app.exceptions import JobStateConflict

from .conftest import run


def test_take_marks_the_job_active_for_this_worker_in_one_step(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", key="k"))
            taken = await attempts.take(queue, "w1")
            stored = await queue.job("k")
            return taken, stored, await attempts.take(queue, "w2")

    taken, stored, nothing = run(scenario())
    assert (taken.status, taken.attempts, taken.worker_id) == (Status.ACTIVE, 1, "w1")
    assert (stored.status, stored.attempts, stored.worker_id, stored.started) == (Status.ACTIVE, 1, "w1", taken.started)
    assert nothing is None


def test_big_integers_empty_lists_and_quotes_survive_every_rewrite(open_queue):
    kwargs = {"big": 2**62 + 1, "empty": [], "nested": {"status": "queued"}, "text": 'say "hi" \\ bye'}

    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", kwargs=kwargs, key="k", heartbeat=30))
            taken = await attempts.take(queue, "w1")
            await attempts.touch(queue, "w1", [(taken, True)])
            await records.request_abort(queue, "k", "stop")
            await attempts.end_abort(queue, taken)
            return await queue.job("k")

    stored = run(scenario())
    assert stored.kwargs == kwargs and stored.status == Status.ABORTED and stored.error == "stop"


def test_a_terminal_job_is_never_written_again(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", key="k", retries=3))
            job = await attempts.take(queue, "w1")
            await attempts.end_attempt(queue, job, Status.COMPLETE, result=42)
            with pytest.raises(JobStateConflict):
                await attempts.end_attempt(queue, await attempts.take(queue, "w1") or job, Status.FAILED, error="late")
            with pytest.raises(JobStateConflict):
                await attempts.retry_attempt(queue, job, "late")
            after_abort, changed = await records.request_abort(queue, "k", "too late")
            await queue.update(job, progress=0.5)
            return await queue.job("k"), after_abort, changed, await sweeping.check_consistency(queue)

    stored, after_abort, changed, report = run(scenario())
    assert (stored.status, stored.result, stored.error) == (Status.COMPLETE, 42, None)
    assert after_abort.status == Status.COMPLETE and changed is False  # the abort changed nothing, and says so
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}


def test_abort_ends_a_queued_or_scheduled_job_at_once(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", key="now"))
            await records.submit(queue, Job("f", key="later", scheduled=2_000_000_000))
            results = [await records.request_abort(queue, key, "no") for key in ("now", "later")]
            return (
                results,
                await queue.count("queued"),
                await queue.count("incomplete"),
                await attempts.take(queue, "w"),
            )

    results, queued, incomplete, taken = run(scenario())
    assert [(job.status, changed) for job, changed in results] == [(Status.ABORTED, True)] * 2
    assert (queued, incomplete, taken) == (0, 0, None)


def test_an_attempt_the_sweep_took_over_cannot_record_its_outcome(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", key="k", heartbeat=1, retries=3))
            zombie = await attempts.take(queue, "w1")
            raw = await queue.redis.get(zombie.id)
            swept = await sweeping._sweep_job(queue, raw, zombie, "no heartbeat (test)")
            rerun = await attempts.take(queue, "w2")
            with pytest.raises(JobStateConflict):
                await attempts.end_attempt(queue, zombie, Status.COMPLETE, result="from the zombie")
            await attempts.end_attempt(queue, rerun, Status.COMPLETE, result="from the re-run")
            return swept, await queue.job("k")

    swept, stored = run(scenario())
    assert swept is True
    assert (stored.status, stored.result, stored.attempts, stored.worker_id) == (
        Status.COMPLETE,
        "from the re-run",
        2,
        "w2",
    )


def test_enqueue_with_the_key_of_an_aborting_job_runs_the_new_work_once_the_abort_ends(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", kwargs={"n": 1}, key="k"))
            old = await attempts.take(queue, "w1")
            await records.request_abort(queue, "k", "replace me")
            new, state = await records.submit(queue, Job("f", kwargs={"n": 2}, key="k"))
            again, again_state = await records.submit(queue, Job("f", kwargs={"n": 3}, key="k"))
            before = await attempts.take(queue, "w2")  # nothing runnable while the old one winds down
            await attempts.end_abort(queue, old)
            taken = await attempts.take(queue, "w2")
            return state, new, again_state, again, before, taken

    state, new, again_state, again, before, taken = run(scenario())
    assert state == "deferred" and new.kwargs == {"n": 2}
    assert again_state == "exists" and again.kwargs == {"n": 2}  # the waiting work, never the dying job
    assert before is None
    assert taken.kwargs == {"n": 2} and taken.status == Status.ACTIVE


def test_a_record_written_by_plain_saq_is_still_taken(open_queue):
    async def scenario():
        async with open_queue() as queue:
            plain = RedisQueue(queue.redis, name="default")
            await plain.enqueue(Job("f", key="legacy", kwargs={"a": 1}))
            return await attempts.take(queue, "w1"), await queue.job("legacy")

    taken, stored = run(scenario())
    assert taken.kwargs == {"a": 1} and stored.status == Status.ACTIVE and stored.worker_id == "w1"


def test_racing_transitions_leave_every_job_in_exactly_one_state(open_queue):
    """Finish, abort, sweep and a heartbeat, all at once on the same attempt, 300 times."""

    async def scenario():
        async with open_queue() as queue:
            jobs = []
            for i in range(300):
                await records.submit(queue, Job("f", key=f"k{i}", heartbeat=1, retries=2))
                jobs.append(await attempts.take(queue, "w1"))
            raws = [await queue.redis.get(job.id) for job in jobs]

            async def race(job, raw):
                async def finish():
                    try:
                        await attempts.end_attempt(queue, job, Status.COMPLETE, result="done")
                        return "complete"
                    except JobStateConflict:
                        return "refused"

                results = await asyncio.gather(
                    finish(),
                    records.request_abort(queue, job.key, "abort"),
                    sweeping._sweep_job(queue, raw, queue.deserialize(raw), "no heartbeat (race)"),
                    attempts.touch(queue, "w1", [(job, True)]),
                )
                return results[0], await queue.job(job.key)

            outcomes = await asyncio.gather(*(race(job, raw) for job, raw in zip(jobs, raws, strict=True)))
            return outcomes, await sweeping.check_consistency(queue), await queue.count("active")

    outcomes, report, active = run(scenario())
    for finished, stored in outcomes:
        if finished == "complete":
            assert stored.status == Status.COMPLETE
        else:  # the sweep re-queued it, or the abort got there first and the sweep ended it
            assert stored.status in (Status.QUEUED, Status.ABORTING, Status.ABORTED)
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}
    aborting = sum(stored.status == Status.ABORTING for _, stored in outcomes)
    assert active == aborting  # only attempts still being aborted stay listed as running


def test_pause_stops_taking_and_resume_starts_again(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", key="a"))
            await records.submit(queue, Job("f", key="b"))
            first = await attempts.take(queue, "w1")
            await pausing.pause(queue, "ops")
            paused = await pausing.paused(queue)
            nothing = await attempts.take(queue, "w1", wait=0.2)  # waits, takes nothing, does not spin
            after_finish = await attempts.end_attempt(queue, first, Status.COMPLETE, take_next=True)
            await pausing.resume(queue)
            return paused, nothing, after_finish, await attempts.take(queue, "w1"), await pausing.paused(queue)

    paused, nothing, after_finish, resumed, after = run(scenario())
    assert paused["by"] == "ops" and nothing is None and after_finish is None
    assert resumed.key == "b" and after is None


def test_bulk_changes_are_compare_and_sets(open_queue):
    async def scenario():
        async with open_queue() as queue:
            for i in range(1200):
                await records.submit(queue, Job("f", key=f"k{i}", retries=1))
                job = await attempts.take(queue, "w")
                await attempts.end_attempt(queue, job, Status.FAILED, error="boom")
            found = [record async for record in records.records(queue, lambda job: job.status == Status.FAILED)]
            # One of them is retried by someone else first: the bulk retry must leave it alone.
            await records.compare_and_set(queue, "k0", lambda job: setattr(job, "status", Status.QUEUED) or job)

            def retry(job):
                job.status, job.retries = Status.QUEUED, job.attempts + 1
                return job

            retried = await records.change_many(queue, found, retry)
            finished = [record async for record in records.records(queue, lambda job: job.status == Status.QUEUED)]
            return (
                len(found),
                retried,
                len(finished),
                await queue.count("queued"),
                await sweeping.check_consistency(queue),
            )

    found, retried, queued_jobs, queued, report = run(scenario())
    assert (found, retried, queued_jobs, queued) == (1200, 1199, 1200, 1200)
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}


def test_a_swept_attempt_cannot_write_over_its_requeued_job_before_the_rerun(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", key="k", heartbeat=1, retries=4, retry_delay=60))
            zombie = await attempts.take(queue, "w1")
            raw = await queue.redis.get(zombie.id)
            await sweeping._sweep_job(queue, raw, zombie, "no heartbeat (test)")
            with pytest.raises(JobStateConflict):  # queued again, not yet re-run: still not w1's
                await attempts.end_attempt(queue, zombie, Status.FAILED, error="late, from the zombie")
            return await queue.job("k")

    stored = run(scenario())
    assert (stored.status, stored.attempts, stored.worker_id) == (Status.QUEUED, 1, None)
    assert stored.retries == 4  # its retries are all still there


def test_a_job_s_own_retry_is_not_the_worker_s_after_it_is_queued_again(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", key="k", retries=3, retry_delay=60))
            attempt = await attempts.take(queue, "w1")
            late = dataclasses.replace(attempt)
            assert await attempts.retry_attempt(queue, attempt, "boom") == Status.QUEUED
            with pytest.raises(JobStateConflict):
                await attempts.end_attempt(queue, late, Status.COMPLETE, result="a second write of the same attempt")
            return await queue.job("k")

    stored = run(scenario())
    assert (stored.status, stored.worker_id, stored.error) == (Status.QUEUED, None, "boom")


def test_a_record_with_a_fractional_ttl_still_ends_whole(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", key="k", ttl=60))
            attempt = await attempts.take(queue, "w1")
            attempt.ttl = 1.5  # as a record not written through tasks_app may hold
            await attempts.end_attempt(queue, attempt, Status.COMPLETE, result=1)
            return (
                await queue.job("k"),
                await queue.redis.ttl(queue.job_id("k")),
                await sweeping.check_consistency(queue),
            )

    stored, ttl, report = run(scenario())
    assert stored.status == Status.COMPLETE and 0 < ttl <= 2
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}


def test_depth_reads_counts_pause_and_live_workers_at_once(open_queue):
    async def scenario():
        async with open_queue() as queue:
            for key in ("a", "b", "c"):
                await records.submit(queue, Job("f", key=key))
            await records.submit(queue, Job("f", key="later", scheduled=int(time.time()) + 3600))
            await attempts.take(queue, "w1")
            before = await pausing.depth(queue)
            await pausing.pause(queue, "ops")
            return before, await pausing.depth(queue)

    before, after = run(scenario())
    assert (before.queued, before.active, before.scheduled, before.paused) == (2, 1, 1, None)
    assert before.workers == 0  # no worker has written its info
    assert after.paused["by"] == "ops"


def test_a_finish_written_again_never_lands_on_the_next_job_of_its_key(open_queue):
    """A worker writes an outcome again when it could not tell it was kept (a lost reply; on a durable
    queue, every outcome its replicas did not confirm in time). Meanwhile the key may have been enqueued
    anew and the same worker may run that job, at the same attempt number: the outcome of the first job
    must not be written over the second one's running attempt."""

    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", kwargs={"text": "first"}, key="k"))
            first = await attempts.take(queue, "w1")
            await attempts.end_attempt(queue, dataclasses.replace(first), Status.COMPLETE, result="first")
            await records.submit(queue, Job("f", kwargs={"text": "second"}, key="k"))
            await asyncio.sleep(0.002)  # a later millisecond: the second attempt starts after the first
            second = await attempts.take(queue, "w1")
            assert (second.worker_id, second.attempts) == (first.worker_id, first.attempts)
            with pytest.raises(JobStateConflict):
                await attempts.end_attempt(queue, first, Status.COMPLETE, result="first")
            stored = await queue.job("k")
            assert (stored.status, stored.kwargs) == (Status.ACTIVE, {"text": "second"})
            await attempts.end_attempt(queue, second, Status.COMPLETE, result="second")
            assert (await queue.job("k")).result == "second"
            # Nor taken for "written already" once the second job has ended as the first one's write
            # would have it (what a failover that lost the first write, and a redelivery, lead to).
            with pytest.raises(JobStateConflict):
                await attempts.end_attempt(queue, first, Status.COMPLETE, result="first")
            assert (await queue.job("k")).result == "second"

    run(scenario())
