"""Automatic pipelining: script calls made while another is on its way go to Redis together.

A call made when nothing is in flight goes straight to Redis, so calls keep their order and
a quiet worker pays no extra latency. Calls made while one is in flight wait for it, then go
together as one pipeline: one socket write and one read instead of a system call each way
per call, which is most of a no-op job's cost. Each call still gets its own reply. Under load
this settles into one pipeline per round trip, as a single connection with pipelining would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError


class AutoPipeline:
    """Sends ``EVALSHA`` calls queued in one loop turn as one pipeline; ``sources`` maps sha -> Lua."""

    def __init__(self, redis: Redis, sources: dict[str, str]) -> None:
        self.redis = redis
        self.sources = sources
        self.pending: list[tuple[str, Sequence[Any], Sequence[Any], asyncio.Future]] = []
        self.in_flight = False
        self.sending: set[asyncio.Task] = set()  # held, so that a batch in flight is not garbage-collected

    async def evalsha(self, sha: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The script's reply; raises what Redis raised for this call (or for the whole batch)."""
        if self.in_flight:
            future = asyncio.get_running_loop().create_future()
            self.pending.append((sha, keys, args, future))
            return await future
        self.in_flight = True
        try:
            return await self._one(sha, keys, args)
        finally:
            self._next()

    def _next(self) -> None:
        """What was on its way is back: send what queued meanwhile, as one batch."""
        self.in_flight = False
        if self.pending:
            self.in_flight = True
            batch, self.pending = self.pending, []
            task = asyncio.ensure_future(self._send(batch))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)

    async def _send(self, batch: list[tuple[str, Sequence[Any], Sequence[Any], asyncio.Future]]) -> None:
        try:
            await self._send_batch(batch)
        finally:
            self._next()

    async def _send_batch(self, batch: list[tuple[str, Sequence[Any], Sequence[Any], asyncio.Future]]) -> None:
        live = [call for call in batch if not call[3].done()]  # a caller cancelled meanwhile
        if not live:
            return
        try:
            if len(live) == 1:
                replies = [await self._one(*live[0][:3])]
            else:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for sha, keys, args, _ in live:
                        pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
                    replies = await pipe.execute(raise_on_error=False)
                replies = [
                    await self._one(sha, keys, args) if isinstance(reply, NoScriptError) else reply
                    for (sha, keys, args, _), reply in zip(live, replies, strict=True)
                ]
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

    async def _one(self, sha: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            return await self.redis.execute_command("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            # Redis lost its script cache (a restart): load the script again, then run it.
            await self.redis.script_load(self.sources[sha])
            return await self.redis.execute_command("EVALSHA", sha, len(keys), *keys, *args)
