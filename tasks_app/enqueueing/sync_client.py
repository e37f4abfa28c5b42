"""Enqueueing from sync code without an event loop: the enqueue script, sent by the calling thread.

``enqueue`` and ``enqueue_many`` used to hop to the background loop's thread (``connections.py``)
and wait for it: two thread switches and a loop turn per call, which cost more than the rest of
the call (``bench/peers.py``: 4,700 jobs/s one at a time, against huey's 17,000). Here the calling
thread sends the same ``EVALSHA`` of the same enqueue script (``engine.records.enqueue_call``)
on a blocking connection of its own, packed by hiredis, and reads the reply: one round trip.

Each thread keeps one connection per queue (a web server's threads live long; a connection is
closed when its thread ends), made by ``connections.make_client`` (plain, TLS or Sentinel URLs). A
connection that failed mid-call is closed, so a reply is never read by the wrong call; one that Redis
dropped while idle (or a failover) is reopened once. A forked child opens its own. Replies wait at
most ``REPLY_TIMEOUT_S`` (the background loop's bound, as before). A queue with ``wait_replicas``
gets one ``WAIT`` after the call's jobs, on their connection (``engine/replication.py``).
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import hiredis
from django.core.signals import setting_changed
from redis import Redis
from redis.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from saq.job import Job

from ..engine import records, replication
from ..engine.queue import AtomicRedisQueue
from .connections import background, get_queue, make_client

# Seconds a call waits for Redis's reply before raising ``redis.TimeoutError``.
REPLY_TIMEOUT_S = 30


class SyncQueue:
    """Queue ``name``'s enqueue script over blocking connections, one per thread.

    ``template`` is the queue the jobs are readied and serialized by, and the one they carry
    (``job.queue``) afterwards, as before: the background loop's queue of that name (it opens no
    connection here). Its ``durability`` (``wait_replicas``) records the last WAIT, as the async path's.
    """

    def __init__(self, name: str) -> None:
        self.template: AtomicRedisQueue = background.run(_loop_queue(name))
        self.client: Redis = make_client(name, sync=True, socket_timeout=REPLY_TIMEOUT_S)  # type: ignore[assignment]
        self.sha, self.source = records.enqueue_script(self.template)
        self.local = threading.local()

    def submit(self, job: Job) -> tuple[Job, str]:
        """``AtomicRedisQueue.submit``, from a sync caller: ``(job, state)``; raises as it does, and
        redis-py's errors (``ConnectionError``, ``TimeoutError``) when Redis does not answer.

        ``submit_many`` for one job, without its chunking (a view's enqueue pays for every step here):
        on a connection that has answered before, one write and one read; anything else (a first call,
        a dropped connection, ``wait_replicas``, a lost script cache) as ``submit_many`` does it."""
        template = self.template
        local = self.local
        if template.durability is not None or not getattr(local, "answered", False):
            return self.submit_many([job])[0]
        records.ready(template, job)
        keys, args = records.enqueue_call(template, job)
        packed = hiredis.pack_command(("EVALSHA", self.sha, len(keys), *keys, *args))
        connection = local.connection
        local.answered = False  # until this exchange has succeeded
        try:
            connection.send_packed_command((packed,), False)
            reply = connection.read_response()
        except ResponseError as exc:  # Redis answered: the script's error, or a lost script cache
            reply = exc
        except RedisConnectionError:
            # Dropped while idle (Redis restarted, or closed it; a failover): once more, on a new
            # connection, as _exchange does (a job that went in already is found by its key).
            self._open(connection)
            reply = _stream(connection, iter([[packed]]))[0]
        except BaseException:
            connection.disconnect()  # its stream is unknown
            raise
        local.answered = True
        if isinstance(reply, NoScriptError):  # Redis restarted and answered at once: as submit_many
            self.client.script_load(self.source)
            reply = self._exchange(iter([[packed]]), lambda: [[packed]])[0]
        if isinstance(reply, ResponseError):
            raise reply
        return records.enqueued(template, job, reply)

    def submit_many(self, jobs: Sequence[Job], chunk: int = 500) -> list[tuple[Job, str]]:
        """``submit`` for many jobs, pipelined ``chunk`` at a time with one chunk in flight: Redis runs a
        chunk's scripts while the next one is serialized. Results in order. A script error for one job
        (e.g. Redis out of memory) is raised once every reply is read; the other jobs are queued."""
        packed: list[bytes] = []
        # wait_replicas (engine/replication.py): a probe write and one WAIT after the jobs, in the same
        # stream, so that it counts their writes and those of the jobs an "exists" reports (a resend on a
        # new connection sends them again, after them).
        durability = self.template.durability
        wait = []
        if durability is not None:
            wait = [[hiredis.pack_command(command) for command in replication.confirmation(self.template, durability)]]

        def chunks() -> Iterator[list[bytes]]:
            for start in range(0, len(jobs), chunk):
                part = []
                for job in jobs[start : start + chunk]:
                    records.ready(self.template, job)
                    keys, args = records.enqueue_call(self.template, job)
                    part.append(hiredis.pack_command(("EVALSHA", self.sha, len(keys), *keys, *args)))
                packed.extend(part)
                yield part
            yield from wait

        replies = self._exchange(chunks(), lambda: [packed[i : i + chunk] for i in range(0, len(packed), chunk)] + wait)
        acknowledged = _confirmation(replies, wait)
        lost = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if lost:
            # Redis lost its script cache (a restart): load the script and send those again. A job that
            # went in already is found by its key and returned as it is stored.
            self.client.script_load(self.source)
            again = [[packed[i] for i in lost], *wait]
            more = self._exchange(iter(again), lambda: again)
            acknowledged = _confirmation(more, wait)
            for i, reply in zip(lost, more, strict=True):
                replies[i] = reply
        if errors := [reply for reply in replies if isinstance(reply, ResponseError)]:
            raise errors[0]
        if durability is not None:
            durability.confirm(acknowledged)  # raises ReplicasNotConfirmed when short of replicas
        return [records.enqueued(self.template, job, reply) for job, reply in zip(jobs, replies, strict=True)]

    def _exchange(self, chunks: Iterator[list[bytes]], resend: Callable[[], list[list[bytes]]]) -> list[Any]:
        """The replies to ``chunks`` (error replies in place) on this thread's connection; if that
        connection turns out dropped, once more on a new one, with every chunk (``resend()``)."""
        local = self.local
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = self.client.connection_pool.make_connection()
            local.answered = False
        answered, local.answered = local.answered, False  # until this exchange has succeeded
        try:
            if not answered:
                self._open(connection)
            replies = _stream(connection, chunks)
        except RedisConnectionError:
            if not answered:
                raise  # a new connection that failed: Redis is unreachable
            # Dropped while idle (Redis restarted, or closed it; a failover): once more, on a new connection.
            for _ in chunks:  # the rest of them, made
                pass
            self._open(connection)
            replies = _stream(connection, iter(resend()))
        local.answered = True
        return replies

    def _open(self, connection: AbstractConnection) -> None:
        """Connect, and load the enqueue script: a Redis that restarted has lost it, and a refused
        EVALSHA would cost a resend (and a second WAIT with ``wait_replicas``)."""
        try:
            # connect() itself: a Sentinel-managed connection asks the sentinels for the primary there,
            # and nowhere else (a write on an unconnected one would go to localhost).
            connection.connect()
            connection.send_command("SCRIPT", "LOAD", self.source)
            connection.read_response()
        except BaseException:
            connection.disconnect()
            raise


def _stream(connection: AbstractConnection, chunks: Iterator[list[bytes]]) -> list[Any]:
    """Write each chunk of packed commands in one go and read the replies of the one before meanwhile;
    returns every reply, in order, error replies in place. On any other failure the connection is
    closed: its stream is unknown."""
    replies: list[Any] = []
    in_flight: collections.deque[int] = collections.deque()  # replies owed, per chunk written

    def read(count: int) -> None:
        for _ in range(count):
            try:
                replies.append(connection.read_response())
            except ResponseError as exc:
                replies.append(exc)

    try:
        for part in chunks:
            connection.send_packed_command([b"".join(part)], False)
            in_flight.append(len(part))
            if len(in_flight) > 1:
                read(in_flight.popleft())
        while in_flight:
            read(in_flight.popleft())
    except BaseException:
        connection.disconnect()
        raise
    return replies


async def _loop_queue(name: str) -> AtomicRedisQueue:
    return get_queue(name)


_queues: dict[str, SyncQueue] = {}
_pid = os.getpid()
_lock = threading.Lock()


def sync_queue(name: str) -> SyncQueue:
    """This process's ``SyncQueue`` of queue ``name``; raises ``ImproperlyConfigured`` for an unknown one."""
    global _pid
    if _pid != os.getpid():  # a forked child: its parent's sockets are not its own
        with _lock:
            if _pid != os.getpid():
                _queues.clear()
                _pid = os.getpid()
    queue = _queues.get(name)
    if queue is None:
        with _lock:
            queue = _queues.get(name) or _queues.setdefault(name, SyncQueue(name))
    return queue


def forget_all(**kwargs: Any) -> None:
    """Drop the queues (the ``SAQ`` setting changed): the next call opens new ones."""
    if kwargs.get("setting") == "SAQ":
        _queues.clear()


setting_changed.connect(forget_all, dispatch_uid="tasks_app.sync_client")


def _confirmation(replies: list[Any], wait: list) -> Any:
    """WAIT's reply, taken with the probe's off the end of ``replies`` (None without ``wait_replicas``)."""
    if not wait:
        return None
    acknowledged = replies.pop()
    replies.pop()  # the probe's OK
    return acknowledged
