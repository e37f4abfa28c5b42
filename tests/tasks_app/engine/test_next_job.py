"""A worker's slot takes its next job with its outcome's write (one round trip), but only when the slot is
free: never while it still has the last attempt's after_process hooks or outcome callbacks to run, and a
job taken so that a stop overtakes goes back to its queue."""

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from saq.job import Job, Status

from tasks_app.engine import attempts, records
from tasks_app.engine.execution import ON_OUTCOME
from tasks_app.engine.worker import Worker

from .conftest import run


def worker_for(queue, functions, **options) -> Worker:
    options = {"concurrency": 1, "dequeue_timeout": 1.0, "shutdown_grace_period_s": 5, **options}
    return Worker(queue, functions, executor=ThreadPoolExecutor(2), **options)


async def _status(queue, key: str) -> Status:
    return (await queue.job(key)).status


@pytest.mark.parametrize("after_work", ["after_process", "on_outcome"])
def test_the_next_job_waits_on_its_queue_while_the_slot_runs_after_work(open_queue, after_work):
    """While A's after_process hook (or an outcome callback of its task: a django.tasks receiver) runs, B is
    still QUEUED, for any slot or worker to take. It was taken with A's outcome, and waited for the hook
    unheartbeated (swept as silent after its heartbeat) and with its timeout counting (swept past it)."""

    async def scenario():
        async with open_queue() as queue:
            seen = []

            async def note(ctx_or_outcome):
                seen.append((after_work, await _status(queue, "B"), list(worker.taken)))

            async def body(ctx):
                if ctx["job"].key == "A" and after_work == "on_outcome":
                    ctx[ON_OUTCOME].append(note)

            async def after(ctx):
                if ctx["job"].key == "A":
                    await note(ctx)

            hooks = {"after_process": [after]} if after_work == "after_process" else {}
            worker = worker_for(queue, [("f", body)], **hooks)
            for key in ("A", "B"):
                await records.submit(queue, Job("f", key=key, heartbeat=30, timeout=600))
            await worker._process_one(await attempts.take(queue, worker.id))
            return seen, await _status(queue, "A")

    assert run(scenario()) == ([(after_work, Status.QUEUED, [])], Status.COMPLETE)


def test_without_after_work_the_next_job_comes_with_the_outcome(open_queue):
    async def scenario():
        async with open_queue() as queue:

            async def body(ctx):
                pass

            worker = worker_for(queue, [("f", body)])
            for key in ("A", "B"):
                await records.submit(queue, Job("f", key=key, heartbeat=30, timeout=600))
            await worker._process_one(await attempts.take(queue, worker.id))
            return [job.key for job, _ in worker.taken], await _status(queue, "B")

    assert run(scenario()) == (["B"], Status.ACTIVE)


def test_a_stop_while_an_outcome_write_is_in_flight_gives_the_job_it_brings_back(open_queue, monkeypatch):
    """The signal lands while A's outcome write, which takes B, is on its way (a busy worker always has a
    write in flight): the stop gave back what was taken before the reply came, and B, which the stopping
    slot does not start, stayed ACTIVE until its heartbeat lapsed; the sweep then used up an attempt."""
    real_end_attempt = attempts.end_attempt
    ran, workers = [], []

    async def end_attempt(queue, job, status, **options):
        if job.key == "A":
            workers[0].event.set()  # the signal handler, as the write leaves
            await asyncio.sleep(0.3)  # the stop runs meanwhile: nothing is taken yet
        return await real_end_attempt(queue, job, status, **options)

    monkeypatch.setattr(attempts, "end_attempt", end_attempt)

    async def body(ctx):
        ran.append(ctx["job"].key)

    async def scenario():
        async with open_queue() as queue:
            workers.append(worker := worker_for(queue, [("f", body)]))
            for key in ("A", "B"):
                await records.submit(queue, Job("f", key=key, heartbeat=30, timeout=600, retries=1))
            await asyncio.wait_for(worker.start(), 30)
            b = await queue.job("B")
            return (b.status, b.attempts, b.worker_id), worker.taken

    (status, attempts_used, owner), taken = run(scenario())
    assert ran == ["A"]
    assert (status, attempts_used, owner, taken) == (Status.QUEUED, 0, None, [])


def test_a_taken_job_redis_cannot_take_back_at_a_stop_is_said_and_makes_the_exit_unclean(tmp_path, caplog):
    """Redis is down as the stop gives back a job taken for the worker: the job stays ACTIVE for the sweep.
    That was silent, and the worker exited 0 as from a clean stop; now it is logged and counted, as an
    outcome left unwritten is (``runworker`` exits 1)."""
    import time

    from tests.redis_server import RedisServer
    from tests.tasks_app.helpers import queue_opener

    server = RedisServer(tmp_path).start()

    async def scenario():
        opened = queue_opener(server.url)()
        queue = await opened.__aenter__()
        worker = worker_for(queue, [])
        await records.submit(queue, Job("f", key="B", heartbeat=30, timeout=600))
        worker.taken = [(await attempts.take(queue, worker.id), time.monotonic())]
        server.stop()
        await worker._give_back_taken()
        with contextlib.suppress(RedisConnectionError):  # closing its connections: Redis is gone
            await opened.__aexit__(None, None, None)
        return worker.unwritten, worker.taken

    caplog.set_level("ERROR", logger="tasks_app.worker")
    try:
        assert run(scenario()) == (1, [])
    finally:
        server.stop()
    (line,) = [r for r in caplog.records if "was not given back" in r.getMessage()]
    assert line.job_key == "B" and "Redis is down" in line.getMessage()


def test_a_slot_cancelled_while_it_checks_a_long_taken_job_gives_it_back_to_the_stop(open_queue):
    """A job taken long ago is checked with Redis before it starts (``_lost_meanwhile``), before its slot
    counts as busy: a stop then cancels the slot as an idle one. The job was dropped, ACTIVE, for the sweep;
    it goes back to ``taken``, which the stop gives back to its queue."""
    import time

    async def scenario():
        async with open_queue() as queue:
            ran = []

            async def body(ctx):
                ran.append(ctx["job"].key)

            worker = worker_for(queue, [("f", body)])
            await records.submit(queue, Job("f", key="B", heartbeat=2, timeout=600))
            job = await attempts.take(queue, worker.id)
            slot = asyncio.create_task(worker._process_one(job, time.monotonic() - 5))  # past heartbeat / 4
            await asyncio.sleep(0)  # the slot sends its check and waits for Redis
            slot.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await slot
            taken = [j.key for j, _ in worker.taken]
            await worker._give_back_taken()
            back = await queue.job("B")
            return ran, taken, (back.status, back.attempts)

    assert run(scenario()) == ([], ["B"], (Status.QUEUED, 0))
