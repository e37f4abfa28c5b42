"""A worker says once that a service is lost and once that it is back, and "back" only when it has
reached that service again: an outcome's write reaches Redis (and on a durable queue the replicas), never
the database; an outbox drain that wrote nothing says nothing of the replicas."""

import asyncio
import logging

from django.db import OperationalError
from saq.job import Job

from tasks_app.engine.outages import REPLICAS, Upkeep
from tasks_app.engine.replication import Durability
from tasks_app.engine.worker import Worker

from .conftest import run


def test_an_outcome_written_to_redis_does_not_end_a_database_outage(open_queue, caplog):
    async def scenario():
        async with open_queue() as queue:
            worker = Worker(queue, [], executor=None)
            worker.outages.failed("the database", OperationalError("connection refused"))

            async def written() -> str:
                return "complete"

            with caplog.at_level(logging.INFO, logger="tasks_app.worker"):
                assert await worker._write(Job("f"), written, "complete") == "complete"
            return worker

    worker = run(scenario())
    assert "The database is back" not in caplog.text
    assert "the database" in worker.outages.since  # still lost: the outbox drain ends it when it reaches it


def test_the_replicas_are_back_once_a_wait_confirms_not_when_a_drain_wrote_nothing(open_queue, caplog):
    durability = Durability(1, 100, "SAQ['QUEUES']['default']")
    runs: list[str] = []

    async def drain() -> None:  # as the outbox's: a row left unconfirmed, then no row, then one confirmed
        runs.append(f"run {len(runs) + 1}")
        if len(runs) == 1:
            durability.confirm(0)  # raises ReplicasNotConfirmed, as a short WAIT does
        elif len(runs) == 3:
            durability.confirm(1)
        elif len(runs) == 4:
            worker.event.set()

    async def scenario():
        nonlocal worker
        async with open_queue() as queue:
            worker = Worker(queue, [], executor=None)
            with caplog.at_level(logging.INFO, logger="tasks_app.worker"):
                chore = Upkeep("outbox", drain, 0.01, uses=("the database",))
                await asyncio.wait_for(worker._every(chore), 10)

    worker = None
    run(scenario())
    lines = [m for m in caplog.messages if "replicas' confirmation" in m]
    assert len(lines) == 2 and lines[0].startswith("Lost the replicas' confirmation"), caplog.messages
    assert lines[1].startswith("The replicas' confirmation is back")
    assert REPLICAS not in worker.outages.since
