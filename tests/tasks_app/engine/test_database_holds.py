"""The worker's hold on takes during a database outage (``Outages.database_down``/``database_wait``), with
the probe of the database replaced: a stop while a slot probes puts the job it took back; an outbox drain
failing on another database does not hold takes nor flap the outage lines; a --burst worker waits the
outage out rather than ending with its queue not empty."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import OperationalError
from saq.job import Job, Status

from tasks_app.engine import outages, records
from tasks_app.engine.outages import Upkeep
from tasks_app.engine.worker import Worker

from .conftest import blocked, run


def worker_for(queue, functions, **options) -> Worker:
    options = {"concurrency": 1, "dequeue_timeout": 1.0, "shutdown_grace_period_s": 5, **options}
    return Worker(queue, functions, executor=ThreadPoolExecutor(2), **options)


def test_a_stop_while_a_slot_probes_the_database_puts_the_job_it_took_back(open_queue, monkeypatch):
    async def slow_down():  # a database that does not answer (the probe's 5 s, shortened)
        await asyncio.sleep(2)
        return False

    monkeypatch.setattr(outages, "database_answers", slow_down)
    ran = []

    async def body(ctx):
        ran.append(1)

    async def scenario():
        async with open_queue() as queue:
            worker = worker_for(queue, [("f", body)])
            started = asyncio.create_task(worker.start())
            await blocked(queue.redis)  # the slot waits for work
            worker.outages.database_held = True  # an attempt found the database down meanwhile
            await records.submit(queue, Job("f", key="k", heartbeat=30, timeout=600, retries=1))
            await asyncio.sleep(0.5)  # the slot took it
            worker.event.set()  # SIGTERM
            await asyncio.wait_for(started, 30)
            return await queue.job("k")

    job = run(scenario())
    assert not ran
    assert (job.status, job.attempts) == (Status.QUEUED, 0)


@pytest.mark.django_db(transaction=True)
def test_a_drain_failing_on_another_database_neither_holds_takes_nor_flaps_the_lines(open_queue, caplog):
    async def drain():  # an outbox on a second alias that is down; the default database answers
        raise OperationalError('connection to server at "outbox-db" failed: Connection refused')

    async def body(ctx):
        return "ran"

    async def scenario():
        async with open_queue() as queue:
            worker = worker_for(queue, [("f", body)], upkeep=[Upkeep("outbox", drain, 0.2, uses=("the database",))])
            started = asyncio.create_task(worker.start())
            await records.submit(queue, Job("f", key="d", retries=0))
            for _ in range(200):
                if (await queue.job("d")).status == Status.COMPLETE:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1)  # several drains fail meanwhile
            worker.event.set()
            await asyncio.wait_for(started, 30)
            return await queue.job("d")

    with caplog.at_level("INFO", logger="tasks_app.worker"):
        job = run(scenario())
    assert job.status == Status.COMPLETE
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if m.startswith("Lost the database")]) == 1
    assert not [m for m in messages if "is back after" in m]


def test_a_burst_worker_waits_out_a_database_outage_and_then_runs_the_job(open_queue, monkeypatch):
    state = {"down": True}

    async def answers():
        return not state["down"]

    monkeypatch.setattr(outages, "database_answers", answers)

    async def body(ctx):
        if state["down"]:
            raise OperationalError("server closed the connection unexpectedly")
        return "ran"

    async def scenario():
        async with open_queue() as queue:
            worker = worker_for(queue, [("f", body)], concurrency=2, burst=True)
            await records.submit(queue, Job("f", key="b", retries=0))
            asyncio.get_running_loop().call_later(1.5, state.update, {"down": False})
            started = time.monotonic()
            await asyncio.wait_for(worker.start(), 30)
            return await queue.job("b"), time.monotonic() - started

    job, took = run(scenario())
    assert (job.status, job.attempts, job.result) == (Status.COMPLETE, 1, "ran")  # the first went back unattempted
    assert took >= 1.5
