"""A running job is touched every heartbeat / 4 seconds, from its first moment: never silent for two
intervals, whatever the heartbeat chore was waiting for when the job started."""

import asyncio
import time

import redis
from saq.job import Job

from tasks_app.engine import attempts, records
from tasks_app.engine.execution import Attempt
from tasks_app.engine.outages import Upkeep
from tasks_app.engine.worker import Worker

from .conftest import run


async def _touched(queue, key: str) -> int:
    return (await queue.job(key)).touched


def test_a_tick_that_comes_early_still_touches_a_job_the_next_tick_would_find_overdue(open_queue):
    """Timers fire a little early: a job touched 0.3 s ago (heartbeat 2 s: due every 0.5 s) is touched
    now, since the next tick (0.5 s on) would come after its 0.5 s; a 30 s one touched 1 s ago is not."""

    async def scenario():
        async with open_queue() as queue:
            worker = Worker(queue, [], executor=None)
            for key, heartbeat in (("short", 2), ("long", 30)):
                await records.submit(queue, Job("f", key=key, heartbeat=heartbeat, timeout=600))
            short, long = await attempts.take(queue, worker.id), await attempts.take(queue, worker.id)
            now = time.monotonic()
            worker.attempts |= {Attempt(job=short, touched=now - 0.3), Attempt(job=long, touched=now - 1.0)}
            before = [await _touched(queue, key) for key in ("short", "long")]
            await asyncio.sleep(0.01)  # so that a touch stamps a later time
            await worker.heartbeat()
            return before, [await _touched(queue, key) for key in ("short", "long")]

    (short_before, long_before), (short_after, long_after) = run(scenario())
    assert short_after > short_before
    assert long_after == long_before


def test_a_job_with_a_short_heartbeat_is_touched_on_its_own_cadence_from_its_start(open_queue):
    """The heartbeat chore of an idle worker waits ``abort`` seconds (here 30); a job with a 2 s
    heartbeat that starts meanwhile is touched every 0.5 s while it runs (for 2 s: three times).
    Before, its first touch waited for the chore's 30 s: it was silent past its heartbeat."""

    async def scenario():
        async with open_queue() as queue:

            async def job_body(ctx):
                await asyncio.sleep(2.0)

            worker = Worker(queue, [("f", job_body)], executor=None, timers={"abort": 30})
            assert "upkeep:heartbeat" in [task.get_name() for task in await worker.upkeep()]
            try:
                await asyncio.sleep(0.05)  # the chore ran once (nothing running) and waits 30 s
                await records.submit(queue, Job("f", key="k", heartbeat=2, timeout=600))
                job = await attempts.take(queue, worker.id)
                seen = {job.touched}

                async def watch():
                    while True:
                        seen.add(await _touched(queue, "k"))
                        await asyncio.sleep(0.02)

                watcher = asyncio.create_task(watch())
                await worker._process_one(job)
                watcher.cancel()
                return sorted(seen), job.started
            finally:
                for task in worker._upkeep_tasks:
                    task.cancel()
                await asyncio.gather(*worker._upkeep_tasks, return_exceptions=True)

    touches, started = run(scenario())
    touches = [t for t in touches if t > started]
    assert len(touches) >= 2, touches  # about 0.5 s, 1 s and 1.5 s in; none before the fix


def test_a_wake_ends_the_wait_at_the_new_shorter_interval():
    interval = [30.0]

    async def scenario():
        chore = Upkeep("heartbeat", asyncio.sleep, lambda: interval[0], wake=asyncio.Event())
        resting = asyncio.create_task(chore.rest(30.0))
        await asyncio.sleep(0.01)
        interval[0] = 0.2
        chore.wake.set()
        start = time.monotonic()
        await asyncio.wait_for(resting, 10)  # not the 30 s it started with
        return time.monotonic() - start

    assert run(scenario()) >= 0.15


def test_a_job_lost_while_its_worker_was_stalled_after_taking_it_is_not_started(open_queue, caplog):
    """A worker stopped (SIGSTOP) between taking a job and starting it: meanwhile the sweep gave the job
    to another worker, which ran it to the end. Waking, the worker finds it asked for the job longer ago
    than its first touch was due, asks Redis, and does not start it. A job still its own it runs."""
    from saq.job import Status

    async def scenario():
        async with open_queue() as queue:
            ran = []

            async def body(ctx):
                ran.append(ctx["job"].key)

            worker = Worker(queue, [("f", body)], executor=None)
            for key in ("ended elsewhere", "still mine"):
                await records.submit(queue, Job("f", key=key, heartbeat=2, timeout=600))
            asked = time.monotonic() - 1.0  # a stall of 1 s after asking: past heartbeat / 4
            lost, mine = await attempts.take(queue, worker.id), await attempts.take(queue, worker.id)

            def elsewhere(job):
                job.status, job.worker_id = Status.COMPLETE, "another-worker"
                return job

            await records.compare_and_set(queue, lost.key, elsewhere)
            await worker._process_one(lost, asked)
            await worker._process_one(mine, asked)
            return ran, (await queue.job(lost.key)).status, (await queue.job(mine.key)).status

    caplog.set_level("WARNING", logger="tasks_app.worker")
    ran, lost_status, mine_status = run(scenario())
    assert ran == ["still mine"]
    assert (lost_status, mine_status) == (Status.COMPLETE, Status.COMPLETE)
    (line,) = [r for r in caplog.records if "not started" in r.getMessage()]
    assert line.job_key == "ended elsewhere" and "no longer this worker's" in line.getMessage()


def test_a_hold_that_fails_leaves_the_rest_of_the_tick_to_go_on(open_queue, monkeypatch):
    """Redis fails the hold of one attempt held past its cancellation: the same tick still acts on the
    abort of another (the error escaped the tick before, and the abort waited for a later one)."""

    async def scenario():
        async with open_queue() as queue:
            worker = Worker(queue, [], executor=None)
            for key in ("held", "aborted"):
                await records.submit(queue, Job("f", key=key, heartbeat=30, timeout=600))
            held, aborted = await attempts.take(queue, worker.id), await attempts.take(queue, worker.id)
            release = asyncio.Event()

            async def outlasting():  # as a sync task's thread: its cancellation does not end it
                while not release.is_set():
                    try:
                        await release.wait()
                    except asyncio.CancelledError:
                        continue

            first, second = asyncio.create_task(outlasting()), asyncio.create_task(asyncio.sleep(60))
            try:
                await asyncio.sleep(0)
                first.cancel()
                await asyncio.sleep(0)
                assert first.cancelling() and not first.done()
                worker.attempts |= {Attempt(job=held, task=first), Attempt(job=aborted, task=second)}
                await queue.abort(aborted, "stop it")

                async def failing_hold(*args):
                    raise redis.ConnectionError("Redis went away between the touch and the hold")

                monkeypatch.setattr(attempts, "hold", failing_hold)
                await worker.heartbeat()
                by_key = {a.job.key: a for a in worker.attempts}
                return by_key["held"].held, by_key["aborted"].ending, second.cancelling()
            finally:
                release.set()
                second.cancel()
                await asyncio.gather(first, second, return_exceptions=True)

    assert run(scenario()) == (False, "aborted", 1)
