"""``listen`` (SAQ's ``Job.refresh(until_complete=...)`` waits through it) hears a change made before its
subscription reached Redis: SAQ's multiplexer subscribes from a task of its own, so a job that ended at
once was waited for for ever (SAQ's own test_burst_poll_interval hung in CI). And it gives no status
its job's record never bore: Pub/Sub channels are server-wide, so a job with the same key in another
database publishes on the same channel.

Each test's job has a key of its own (``unique``): another test run on the same Redis server, in its own
database, publishes on the channels of its jobs' keys, which every listener of these keys hears.
"""

import asyncio
import uuid

import pytest
import redis.asyncio
from saq.job import TERMINAL_STATUSES, Job, Status

from tasks_app.engine import attempts, chains, records
from tasks_app.engine.chains import StepJob

from .conftest import run, subscribed


def unique() -> str:
    return f"listen-{uuid.uuid4().hex}"


async def heard_it(heard: list, status: Status) -> None:
    """Until ``status`` is in ``heard``, polled every 10 ms (at most 5 s)."""
    for _ in range(500):
        if status in heard:
            return
        await asyncio.sleep(0.01)


def _until_terminal(heard: list):
    def callback(key, status):
        heard.append(status)
        return status in TERMINAL_STATUSES

    return callback


def test_a_change_made_before_the_listener_subscribed_is_heard(open_queue):
    async def scenario():
        async with open_queue() as queue:
            k = unique()
            await records.submit(queue, Job("f", key=k))
            job = await attempts.take(queue, "w1")
            await attempts.end_attempt(queue, job, Status.COMPLETE, result=1)  # published to no one
            heard = []

            def callback(key, status):
                heard.append((key, status))
                return status == Status.COMPLETE

            await asyncio.wait_for(queue.listen([k], callback, timeout=5, poll_interval=0.05), 10)
            assert heard == [(k, Status.COMPLETE)]
            heard.clear()  # a poll_interval of 0 (SAQ's "no polling") is not "time out at once"
            await asyncio.wait_for(queue.listen([k], callback, timeout=5, poll_interval=0), 10)
            assert heard == [(k, Status.COMPLETE)]

            # And Job.refresh(until_complete=0), "wait for ever", returns.
            stale = Job("f", key=k, queue=queue)
            await asyncio.wait_for(stale.refresh(0), 10)
            assert stale.status == Status.COMPLETE and stale.result == 1

    run(scenario())


def test_changes_are_heard_once_each_and_a_timeout_still_raises(open_queue):
    async def scenario():
        async with open_queue() as queue:
            k = unique()
            await records.submit(queue, Job("f", key=k))
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
                await queue.listen([k], callback, timeout=1, poll_interval=0.05)
            await changing
            # Each change once, whether it came by message or by a read.
            assert heard == [Status.QUEUED, Status.ACTIVE, Status.COMPLETE]

    run(scenario())


def test_every_published_change_is_given_even_a_repeat(open_queue):
    """As SAQ's listen: a write that publishes the status the job had (SAQ's ``update``) is heard too."""

    async def scenario():
        async with open_queue() as queue:
            k = unique()
            job, _ = await records.submit(queue, Job("f", key=k))
            heard = []

            def callback(key, status):
                heard.append(status)
                return len(heard) == 2

            listening = asyncio.create_task(queue.listen([k], callback, timeout=5, poll_interval=2))
            await asyncio.sleep(0.1)
            await queue.update(job)
            await queue.update(job)
            await asyncio.wait_for(listening, 10)
            assert heard == [Status.QUEUED, Status.QUEUED]

    run(scenario())


def test_a_message_its_record_does_not_bear_is_not_given(open_queue):
    """Another database's job with the same key says "complete" on this job's channel (and someone
    publishes junk there): a wait for this job's end goes on until this job ends."""

    async def scenario():
        async with open_queue() as queue:
            k = unique()
            await records.submit(queue, Job("f", key=k))
            heard = []
            listening = asyncio.create_task(queue.listen([k], _until_terminal(heard), timeout=10, poll_interval=0.05))
            await subscribed(queue)
            pool = queue.redis.connection_pool  # the same server (TCP or a unix socket), another database
            kwargs = {**pool.connection_kwargs, "db": (pool.connection_kwargs.get("db", 0) + 1) % 16}
            other = redis.asyncio.Redis(connection_pool=type(pool)(connection_class=pool.connection_class, **kwargs))
            try:  # publishes only: that database is not written
                assert await other.publish(queue.job_id(k), "complete") >= 1
                assert await other.publish(queue.job_id(k), "no such status") >= 1
            finally:
                await other.aclose()
            # Published after them on the same server, so heard after them: they have been judged by then.
            job = await attempts.take(queue, "w1")
            while Status.ACTIVE not in heard:
                assert not listening.done(), heard
                await asyncio.sleep(0.01)
            assert heard == [Status.QUEUED, Status.ACTIVE]  # QUEUED from the first read
            await attempts.end_attempt(queue, job, Status.COMPLETE, result=1)
            await asyncio.wait_for(listening, 10)
            assert heard == [Status.QUEUED, Status.ACTIVE, Status.COMPLETE]

    run(scenario())


def test_the_end_of_a_job_that_keeps_no_record_is_heard_from_its_message(open_queue):
    """A job with a negative ttl is deleted as it ends: its "complete" has no record to be checked against."""

    async def scenario():
        async with open_queue() as queue:
            k = unique()
            await records.submit(queue, Job("f", key=k, ttl=-1))
            heard = []
            listening = asyncio.create_task(queue.listen([k], _until_terminal(heard), timeout=10, poll_interval=5))
            await subscribed(queue)
            job = await attempts.take(queue, "w1")
            await attempts.end_attempt(queue, job, Status.COMPLETE, result=1)
            assert await queue.job(k) is None
            await asyncio.wait_for(listening, 10)
            # QUEUED from the first read; ACTIVE if its message was judged before the record was deleted.
            assert heard in ([Status.QUEUED, Status.ACTIVE, Status.COMPLETE], [Status.QUEUED, Status.COMPLETE])

    run(scenario())


def test_the_end_of_the_run_waited_for_is_heard_when_the_abort_queues_work_waiting_for_its_key(open_queue):
    """Work enqueued under the key of a job being aborted waits for it; the abort's end stores the job
    ABORTED, publishes "aborted" and queues that work under the key, in one script: no read of the record
    ever finds ABORTED, and the message was taken for a stale one (the wait went on to the new run's end)."""

    async def scenario():
        async with open_queue() as queue:
            k = unique()
            await records.submit(queue, Job("f", kwargs={"n": 1}, key=k))
            old = await attempts.take(queue, "w1")
            await records.request_abort(queue, k, "replaced")
            heard = []
            listening = asyncio.create_task(queue.listen([k], _until_terminal(heard), timeout=5, poll_interval=0.05))
            await subscribed(queue)
            assert (await records.submit(queue, Job("f", kwargs={"n": 2}, key=k)))[1] == "deferred"
            await attempts.end_abort(queue, old)
            await asyncio.wait_for(listening, 10)
            return heard, (await queue.job(k)).status

    heard, now = run(scenario())
    assert heard == [Status.ABORTING, Status.ABORTED] and now == Status.QUEUED


def test_the_end_of_the_run_waited_for_is_heard_when_its_key_is_enqueued_again_at_once(open_queue):
    async def scenario():
        async with open_queue() as queue, open_queue() as other:
            k = unique()
            await records.submit(queue, Job("f", key=k))
            job = await attempts.take(queue, "w1")
            heard = []
            listening = asyncio.create_task(queue.listen([k], _until_terminal(heard), timeout=5, poll_interval=5))
            await subscribed(queue)
            await attempts.end_attempt(other, job, Status.COMPLETE, result=1)
            assert (await records.submit(other, Job("f", key=k)))[1] == "queued"  # a finished key is replaced
            await asyncio.wait_for(listening, 10)
            return heard

    assert run(scenario()) == [Status.ACTIVE, Status.COMPLETE]


def test_the_records_are_read_every_poll_interval_however_many_messages_come(open_queue):
    """A change whose message never came (made before the subscription reached Redis: here, a record
    written without one) is found by the next read, though another key's channel is never quiet for a
    whole ``poll_interval`` (the reads waited for such a quiet spell)."""

    async def scenario():
        async with open_queue() as queue:
            a, b = unique(), unique()
            for key in (a, b):
                await records.submit(queue, Job("f", key=key))
            heard = []

            def callback(key, status):
                heard.append((key, status))
                return key == a and status == Status.COMPLETE

            # No timeout of its own: a read forced by its last short wait would find the change then.
            listening = asyncio.create_task(queue.listen([a, b], callback, timeout=0, poll_interval=0.3))
            await subscribed(queue)

            async def chatter():
                while True:
                    await queue.redis.publish(queue.job_id(b), "queued")
                    await asyncio.sleep(0.1)

            chatting = asyncio.create_task(chatter())
            try:
                await asyncio.sleep(0.1)
                job = await queue.job(a)
                job.status = Status.COMPLETE
                await queue.redis.set(job.id, queue.serialize(job))  # no message
                await asyncio.wait_for(listening, 10)
            finally:
                chatting.cancel()
            return a, heard

    a, heard = run(scenario())
    assert heard[-1] == (a, Status.COMPLETE) and heard.count((a, Status.COMPLETE)) == 1


def test_a_chain_step_waited_for_is_heard_through_its_queueing(open_queue):
    """A step waiting for its parent is NEW, and is stamped ``queued`` anew when its parent's end queues it:
    the same run, whose every change is heard (it was taken for a new run, and its changes but its end
    passed over)."""

    async def scenario():
        async with open_queue() as queue:
            parent, child = Job("f", key=unique()), Job("f", key=unique())
            parent.meta = {chains.META: {"parents": [], "children": [["default", child.key]]}}
            child.meta = {chains.META: {"parents": [["default", parent.key]], "children": []}}
            await chains.submit([StepJob(parent, queue, (), (1,)), StepJob(child, queue, (0,), ())])
            heard = []
            listening = asyncio.create_task(
                queue.listen([child.key], _until_terminal(heard), timeout=10, poll_interval=5)
            )
            await subscribed(queue)
            taken = await attempts.take(queue, "w1")
            assert taken.key == parent.key
            await attempts.end_attempt(queue, taken, Status.COMPLETE, result=1)  # queues the child
            # Each change heard before the next is made: else its message is overtaken, and the record's
            # newer status given in its place.
            await heard_it(heard, Status.QUEUED)
            step = await attempts.take(queue, "w1")
            assert step.key == child.key
            await heard_it(heard, Status.ACTIVE)
            await attempts.end_attempt(queue, step, Status.COMPLETE, result=2)
            await asyncio.wait_for(listening, 10)
            return heard

    assert run(scenario()) == [Status.NEW, Status.QUEUED, Status.ACTIVE, Status.COMPLETE]
