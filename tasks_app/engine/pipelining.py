"""Automatic pipelining of the queue's script calls, on one connection of their own.

Measured (kept: >= 10% required): CPU per job, worker processes + redis-server, medians of 3
interleaved rounds on a 2-core machine shared with 7 other sessions (load average about 5), against
redis-py's own ``Script`` call on the client's pool: no-op jobs at c=10, 128 us vs 211 us (1.65x);
20 ms I/O jobs at c=200, 143 us vs 242 us (1.70x; jobs/s 3,976 vs 2,786, 1.43x).
``uv run python bench/pieces.py --variants all,no-pipelining`` prints them.

Every call is written to Redis without waiting for the replies to earlier ones; one reader
task takes the replies as they come, in order, and hands each to its caller. So the worker
never idles while a batch is on its way, and calls keep the order they were made in. Calls
made with ``gather`` after the first one of a loop turn are written at the end of the turn,
together: one socket write for a wave of jobs finishing at once rather than a system call
each, which costs more than the rest of a no-op job's processing.

The connection is one of its own rather than the client's pool: the pool's checkout, health
check and retry wrapper cost more per call than the Lua script sent, and a reply stream
needs one connection whose order is known. Blocking commands (BLMOVE) and everything else use
the pool.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

Command = tuple[Any, ...]


def pack(commands: list[Command]) -> bytes:
    """The commands in Redis's wire format, packed by hiredis in C (redis-py packs in Python, at about
    twenty times the cost: more than the rest of a no-op job's processing)."""
    return b"".join(hiredis.pack_command(command) for command in commands)


class AutoPipeline:
    """Pipelines ``EVALSHA`` calls on one connection; ``sources`` maps sha -> Lua (to reload a lost cache)."""

    def __init__(self, redis: Redis, sources: dict[str, str]) -> None:
        self.redis = redis
        self.sources = sources
        self.connection: AbstractConnection | None = None
        self.waiting: collections.deque[asyncio.Future] = collections.deque()  # one per command written
        self.gathered: list[tuple[Command, asyncio.Future]] = []
        self.turn_open = False  # a gathering call was written in this loop turn
        self.reader: asyncio.Task | None = None
        self.lock = asyncio.Lock()  # held while (re)connecting, so that one connection is opened
        self.closing: set[asyncio.Task] = set()  # held, so that a disconnect in progress is not collected

    async def evalsha(self, sha: str, keys: Sequence[Any], args: Sequence[Any], gather: bool = False) -> Any:
        """The script's reply; raises what Redis raised for this call, or a connection error.

        ``gather``: for calls whose order against other commands does not matter (a worker's
        slots finishing a wave of jobs together). The first one of a loop turn is written now,
        so Redis starts on it while the others are prepared; the others are written together
        at the end of the turn, in one system call. Otherwise a call is written now.
        """
        command = ("EVALSHA", sha, len(keys), *keys, *args)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if gather and self.turn_open:
            self.gathered.append((command, future))
        else:
            if gather:
                self.turn_open = True
                loop.call_soon(self._write_gathered)
            with contextlib.suppress(Exception):  # the future holds the error too: raised below
                await self._write([(command, future)])
        try:
            reply = await future
        except NoScriptError:
            # Redis lost its script cache (a restart): load the script again, then run it.
            await self.redis.script_load(self.sources[sha])
            return await self.evalsha(sha, keys, args)
        return reply

    def _write_gathered(self) -> None:
        self.turn_open = False
        batch, self.gathered = self.gathered, []
        if not batch:
            return
        task = asyncio.ensure_future(self._write(batch))
        task.add_done_callback(lambda done: done.cancelled() or done.exception())  # errors went to the futures

    async def _write(self, batch: list[tuple[Command, asyncio.Future]]) -> None:
        try:
            connection = await self._connection()
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            raise
        # Queued before the write and in the same order: replies come back in the order written.
        self.waiting.extend(future for _, future in batch)
        try:
            await connection.send_packed_command(pack([command for command, _ in batch]), check_health=False)
        except BaseException as exc:
            self._lost(exc)
            raise

    async def _connection(self) -> AbstractConnection:
        connection = self.connection
        if connection is not None and connection.is_connected and self.reader is not None:
            return connection
        async with self.lock:
            if self.connection is None or not self.connection.is_connected:
                self.connection = self.connection or self.redis.connection_pool.make_connection()
                await self.connection.connect()
            if self.reader is None or self.reader.done():
                self.reader = asyncio.ensure_future(self._read(self.connection))
            return self.connection

    async def _read(self, connection: AbstractConnection) -> None:
        """Hand each reply to the oldest waiting caller, until the connection fails."""
        try:
            while True:
                try:
                    reply = await connection.read_response()
                except ResponseError as exc:  # one call's error: the stream is still in step
                    reply = exc
                if not self.waiting:
                    raise RedisConnectionError("Redis sent a reply nobody asked for")
                future = self.waiting.popleft()
                if future.done():
                    continue  # its caller was cancelled: the reply is dropped, the order is kept
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except asyncio.CancelledError:
            self._lost(RedisConnectionError("the connection was closed"))
            raise
        except Exception as exc:  # the connection failed: every waiting caller hears it
            self._lost(exc)

    def _lost(self, exc: BaseException) -> None:
        """The stream is broken: fail every waiting caller; the next call opens a new connection."""
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)
        self.reader = None
        connection, self.connection = self.connection, None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # the loop is gone (shutting down): so is the connection
        if connection is not None:
            closing = loop.create_task(connection.disconnect(nowait=True))
            self.closing.add(closing)
            closing.add_done_callback(self.closing.discard)

    async def disconnect(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)
            self.reader = None
        if self.connection is not None:
            await self.connection.disconnect()
            self.connection = None
