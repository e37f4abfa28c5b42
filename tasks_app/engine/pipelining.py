"""Automatic pipelining of the queue's script calls, on one connection of their own.

A call made when nothing is in flight goes straight to Redis, so calls keep their order and
a quiet worker pays no extra latency. Calls made while one is in flight wait for it, then go
together: one socket write and one read for all of them, instead of a system call each way
per call, which is most of a no-op job's cost. Each call still gets its own reply. Under load
this settles into one batch per round trip. A worker's hot-path calls may also ``gather``: wait
for the end of the loop turn, so that slots finishing a wave of jobs share one batch.

The batches use a connection of their own rather than the client's pool: a batch is written
and read back whole, and a pool's checkout, health check and retry wrapper cost more per call
than the Lua script they send. Blocking commands (BLMOVE) and everything else use the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError

Call = tuple[str, Sequence[Any], Sequence[Any], asyncio.Future]


class AutoPipeline:
    """Sends ``EVALSHA`` calls made while one is in flight as one batch; ``sources`` maps sha -> Lua."""

    def __init__(self, redis: Redis, sources: dict[str, str]) -> None:
        self.redis = redis
        self.sources = sources
        self.pending: list[Call] = []
        self.in_flight = False
        self.flush_soon = False
        self.connection: AbstractConnection | None = None
        self.sending: set[asyncio.Task] = set()  # held, so that a batch in flight is not garbage-collected

    async def evalsha(self, sha: str, keys: Sequence[Any], args: Sequence[Any], gather: bool = False) -> Any:
        """The script's reply; raises what Redis raised for this call (or, for a lost connection, for all).

        ``gather``: wait for the end of this loop turn, so that the calls other tasks make in the
        same turn go in the same batch. For calls whose order relative to other commands does not
        matter: a worker's slots finishing a wave of jobs.
        """
        if self.in_flight or gather:
            future = asyncio.get_running_loop().create_future()
            self.pending.append((sha, keys, args, future))
            if not self.in_flight and not self.flush_soon:
                self.flush_soon = True
                asyncio.get_running_loop().call_soon(self._flush_soon)
            return await future
        self.in_flight = True
        try:
            (reply,) = await self._exchange([(sha, keys, args)])
        finally:
            self._next()
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _flush_soon(self) -> None:
        self.flush_soon = False
        if not self.in_flight:
            self._next()

    def _next(self) -> None:
        """What was in flight is back: send what queued meanwhile, as one batch."""
        self.in_flight = False
        if self.pending:
            self.in_flight = True
            batch, self.pending = self.pending, []
            task = asyncio.ensure_future(self._send(batch))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)

    async def _send(self, batch: list[Call]) -> None:
        try:
            live = [call for call in batch if not call[3].done()]  # a caller cancelled meanwhile
            try:
                replies = await self._exchange([call[:3] for call in live]) if live else []
            except BaseException as exc:  # the connection failed: every caller of this batch hears it
                for *_, future in live:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                return
            for (*_, future), reply in zip(live, replies, strict=True):
                if future.done():
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        finally:
            self._next()

    async def _exchange(self, calls: list[tuple[str, Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """Write every call, read every reply; an error reply is returned in its place."""
        connection = await self._connection()
        commands = [("EVALSHA", sha, len(keys), *keys, *args) for sha, keys, args in calls]
        try:
            await connection.send_packed_command(connection.pack_commands(commands), check_health=False)
            replies = []
            for _ in commands:
                try:
                    replies.append(await connection.read_response())
                except ResponseError as exc:  # one call's error: the connection is still in step
                    replies.append(exc)
        except BaseException:
            # Cut off mid-exchange (a lost connection, a cancellation): the next one starts afresh.
            await connection.disconnect(nowait=True)
            raise
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            # Redis lost its script cache (a restart): load the scripts again, then run those calls.
            for sha in {calls[i][0] for i in missing}:
                await self.redis.script_load(self.sources[sha])
            for i, reply in zip(missing, await self._exchange([calls[i] for i in missing]), strict=True):
                replies[i] = reply
        return replies

    async def _connection(self) -> AbstractConnection:
        if self.connection is None:
            self.connection = self.redis.connection_pool.make_connection()
        if not self.connection.is_connected:
            await self.connection.connect()
        return self.connection

    async def disconnect(self) -> None:
        if self.connection is not None:
            await self.connection.disconnect()
