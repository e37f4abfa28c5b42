"""The ledger: every execution and every accepted terminal write, recorded outside the queue.

The workers' ``before_process`` and ``after_process`` hooks (``SAQ["HOOKS"]`` in
``bench/distributed/settings.py``) append to the Redis stream ``ledger`` on the ledger server
(``DIST_LEDGER_URL``), a Redis no fault touches:

- ``e=start``: an execution began (before the task body runs);
- ``e=<outcome>``: how it ended, as the worker recorded it (``complete``, ``failed``, ``timeout``,
  ``aborted`` are terminal writes that Redis accepted; ``lost`` is one it refused; ``retrying``...);
- ``e=fault``: written by the harness when it injects a fault (``f`` names it).

Each entry also has ``k`` (the job's identity: its key, and for a cron run ``@`` and its scheduled
time, since every run of a cron entry has the same key), ``a`` (the attempt), ``h`` (the host),
``p`` (the worker's PID) and ``n`` (a nonce: an entry written twice, after a reply lost in a
partition, is counted once). An entry's ID is the ledger server's time (XADD ``*``), so times from
workers whose clocks disagree compare on one clock.

A hook waits out an unreachable ledger (a cut-off host) for up to ``PATIENCE_S``: the record
matters more than the slot it holds meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio

STREAM = "ledger"
PATIENCE_S = 300.0
TERMINAL_OUTCOMES = frozenset({"complete", "failed", "timeout", "aborted"})

_clients: dict[int, redis.asyncio.Redis] = {}  # per event loop (a worker process has one)


def identity(job: Any) -> str:
    """A job's identity in the ledger: its key; a cron run's key and its scheduled time (epoch s)."""
    if job.key.startswith("cron:"):
        return f"{job.key}@{job.scheduled}"
    return job.key


async def _append(fields: dict[str, str]) -> None:
    loop = asyncio.get_running_loop()
    client = _clients.get(id(loop))
    if client is None:
        client = _clients[id(loop)] = redis.asyncio.Redis.from_url(
            os.environ["DIST_LEDGER_URL"], socket_timeout=5, socket_connect_timeout=5
        )
    deadline = loop.time() + PATIENCE_S
    while True:
        try:
            await client.xadd(STREAM, fields)
            return
        except (redis.RedisError, OSError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


def _fields(ctx: dict[str, Any], event: str, nonce: str) -> dict[str, str]:
    job = ctx["job"]
    return {"e": event, "k": identity(job), "a": str(job.attempts), "h": os.environ.get("DIST_HOST", "?"),
            "p": str(os.getpid()), "n": nonce}  # fmt: skip


async def before_process(ctx: dict[str, Any]) -> None:
    """Hook: an execution starts. ``t``: when the worker took the job (``job.started``, stamped by the
    take on the queue Redis's clock): a worker stopped between its take and this hook writes the entry
    late, yet held the job all along."""
    ctx["ledger_nonce"] = nonce = uuid.uuid4().hex
    await _append({**_fields(ctx, "start", nonce), "t": str(ctx["job"].started or "")})


async def after_process(ctx: dict[str, Any]) -> None:
    """Hook: an execution ended with ``ctx["outcome"]`` (set by the engine once it is recorded)."""
    await _append(_fields(ctx, str(ctx.get("outcome")), ctx.get("ledger_nonce", uuid.uuid4().hex) + "-end"))


# --- the harness's side ----------------------------------------------------------------------------


def mark_fault(client: redis.Redis, name: str) -> int:
    """Record that fault ``name`` is injected now; returns the ledger's time of it (epoch ms)."""
    entry_id = client.xadd(STREAM, {"e": "fault", "f": name})
    return int(entry_id.split(b"-")[0])


def now_ms(client: redis.Redis) -> int:
    """The ledger server's clock (epoch ms), the one every ledger time is on."""
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


@dataclass
class Execution:
    at_ms: int  # when it started, on the ledger's clock
    host: str
    pid: int
    attempt: int
    outcome: str | None = None  # None: never recorded an end (killed, or cut off for good)
    ended_ms: int | None = None
    # When the worker took the job (the queue Redis's clock; every server of the harness runs on this
    # machine's one clock), if earlier than ``at_ms``: the hook was delayed (a pause) after the take.
    taken_ms: int | None = None

    @property
    def held_from_ms(self) -> int:
        return min(self.at_ms, self.taken_ms) if self.taken_ms else self.at_ms


@dataclass
class Ledger:
    """What the ledger holds, per job identity."""

    executions: dict[str, list[Execution]] = field(default_factory=lambda: defaultdict(list))

    def terminal_writes(self, key: str) -> list[Execution]:
        return [e for e in self.executions.get(key, []) if e.outcome in TERMINAL_OUTCOMES]

    def first_terminal_after(self, at_ms: int, keys: Iterable[str] | None = None) -> int | None:
        """The earliest accepted terminal write at or after ``at_ms`` (of ``keys``, if given), epoch ms."""
        chosen = self.executions if keys is None else {k: self.executions.get(k, []) for k in keys}
        times = [e.ended_ms for runs in chosen.values() for e in runs if e.outcome in TERMINAL_OUTCOMES]
        later = [t for t in times if t is not None and t >= at_ms]
        return min(later, default=None)


def read(client: redis.Redis) -> Ledger:
    """Every execution recorded so far, in the order they started."""
    ledger = Ledger()
    started: dict[str, Execution] = {}
    seen: set[bytes] = set()
    last = "-"
    while True:
        batch = client.xrange(STREAM, min=last, count=10_000)
        if last != "-":
            batch = batch[1:]  # xrange's min is inclusive
        if not batch:
            return ledger
        for entry_id, raw in batch:
            if raw.get(b"n") in seen:
                continue  # written twice after a lost reply
            seen.add(raw.get(b"n"))
            event = raw[b"e"].decode()
            if event == "fault":
                continue
            at_ms = int(entry_id.split(b"-")[0])
            nonce = raw[b"n"].decode()
            if event == "start":
                taken = raw.get(b"t") or b""
                execution = Execution(at_ms, raw[b"h"].decode(), int(raw[b"p"]), int(raw[b"a"]),
                                      taken_ms=int(taken) if taken.isdigit() else None)  # fmt: skip
                started[nonce] = execution
                ledger.executions[raw[b"k"].decode()].append(execution)
            elif (execution := started.get(nonce.removesuffix("-end"))) is not None:
                execution.outcome, execution.ended_ms = event, at_ms
        last = batch[-1][0].decode()
