"""``listen`` (SAQ's ``Job.refresh(until_complete=...)`` waits through it) hears a change made before its
subscription reached Redis: SAQ's multiplexer subscribes from a task of its own, so a job that ended at
once was waited for for ever (SAQ's own test_burst_poll_interval hung in CI)."""

import asyncio

import pytest
from saq.job import Job, Status

from tasks_app.engine import attempts, records

from .conftest import run


def test_a_change_made_before_the_listener_subscribed_is_heard(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", key="k"))
            job = await attempts.take(queue, "w1")
            await attempts.end_attempt(queue, job, Status.COMPLETE, result=1)  # published to no one
            heard = []

            def callback(key, status):
                heard.append((key, status))
                return status == Status.COMPLETE

            await asyncio.wait_for(queue.listen(["k"], callback, timeout=5, poll_interval=0.05), 10)
            assert heard == [("k", Status.COMPLETE)]
            heard.clear()  # a poll_interval of 0 (SAQ's "no polling") is not "time out at once"
            await asyncio.wait_for(queue.listen(["k"], callback, timeout=5, poll_interval=0), 10)
            assert heard == [("k", Status.COMPLETE)]

            # And Job.refresh(until_complete=0), "wait for ever", returns.
            stale = Job("f", key="k", queue=queue)
            await asyncio.wait_for(stale.refresh(0), 10)
            assert stale.status == Status.COMPLETE and stale.result == 1

    run(scenario())


def test_changes_are_heard_once_each_and_a_timeout_still_raises(open_queue):
    async def scenario():
        async with open_queue() as queue:
            await records.submit(queue, Job("f", key="k"))
            heard = []

            async def callback(key, status):
                heard.append(status)
                return False

            async def change():
                await asyncio.sleep(0.2)
                job = await attempts.take(queue, "w1")
                await asyncio.sleep(0.2)
                await attempts.end_attempt(queue, job, Status.COMPLETE)

            changing = asyncio.create_task(change())
            with pytest.raises(TimeoutError):
                await queue.listen(["k"], callback, timeout=1, poll_interval=0.05)
            await changing
            # Each change once, whether it came by message or by a read.
            assert heard == [Status.QUEUED, Status.ACTIVE, Status.COMPLETE]

    run(scenario())


def test_every_published_change_is_given_even_a_repeat(open_queue):
    """As SAQ's listen: a write that publishes the status the job had (SAQ's ``update``) is heard too."""

    async def scenario():
        async with open_queue() as queue:
            job, _ = await records.submit(queue, Job("f", key="k"))
            heard = []

            def callback(key, status):
                heard.append(status)
                return len(heard) == 2

            listening = asyncio.create_task(queue.listen(["k"], callback, timeout=5, poll_interval=2))
            await asyncio.sleep(0.1)
            await queue.update(job)
            await queue.update(job)
            await asyncio.wait_for(listening, 10)
            assert heard == [Status.QUEUED, Status.QUEUED]

    run(scenario())
