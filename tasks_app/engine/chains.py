"""Chains and groups on an ``RedisQueue``: every step written in one script, and each step queued by the
write that ends its last parent (``engine/lua/chains.py`` has the Lua and the links each step keeps).

A step is a normal job whose ``meta["chain"]`` is ``{"parents": [[queue, key], ...], "children": [...],
"on_failure": policy}`` (the dashboard links them). Only a job with that entry costs anything more: its
outcome's write gets one more ARGV (its links key, ``args``), and its run one read of its parents'
results (``parent_results``). Each ``queue`` is an ``engine.queue.AtomicRedisQueue`` (annotated by its SAQ
base: that module imports this one).
A plain job's ``meta`` is empty, and the check is one falsy test.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from saq.job import Job, Status
from saq.queue.redis import RedisQueue

META = "chain"
POLICIES = ("fail", "skip")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def links_key(queue_name: str, key: str) -> str:
    """The Redis key of a step's links hash (as SAQ names a queue's keys: ``saq:<queue>:...``)."""
    return f"saq:{queue_name}:chain:{key}"


def of(job: Job) -> dict | None:
    """A step's ``{"parents": [[queue, key], ...], "children": [...]}``, or None for a job of no chain."""
    return job.meta.get(META) if job.meta else None


def args(queue: RedisQueue, job: Job) -> list[str]:
    """The extra ARGV an outcome's write of ``job`` takes: its links key for a chain step, else nothing."""
    if job.meta and META in job.meta:
        return [links_key(queue.name, job.key)]
    return []


def waiting(job: Job) -> bool:
    """Whether ``job`` is a step still waiting for its parents (NEW, on no list: its parents queue it)."""
    return job.status == Status.NEW and bool(job.meta) and META in job.meta


def not_run(job: Job) -> str:
    """Why ``job`` cannot be retried, if it is a step with parents that ended without running (a parent did
    not complete, or it was aborted while it waited): a retry would run it at once, before or without its
    parents' results. "" for any other job."""
    links = of(job)
    if job.attempts == 0 and links and links.get("parents"):
        return "a chain step that never ran (its parents' results are not there): enqueue the chain anew"
    return ""


@dataclass(frozen=True)
class StepJob:
    """One step to write: its job (on its queue), its parents and children (indexes into the steps), and
    what it does when a parent fails for good (``POLICIES``)."""

    job: Job
    queue: RedisQueue
    parents: tuple[int, ...]
    children: tuple[int, ...]
    on_failure: str = "fail"


async def submit(steps: Sequence[StepJob]) -> tuple[list[Job], str]:
    """Write every step in one script on the first step's Redis: those without parents QUEUED, the others
    NEW until their parents complete. Returns the jobs (``queued`` stamped) and "queued", or "exists" when a
    step's key was written already (an outbox row delivered twice): nothing is written then.

    Every queue must be on the first one's Redis (the caller checks). Raises ``JobNotStorable``."""
    first = steps[0].queue
    keys: list[str] = []
    argv: list[Any] = []
    for step in steps:
        job, queue = step.job, step.queue
        if job.queue and job.queue.name != queue.name:
            raise ValueError(f"Job {job.key} belongs to queue {job.queue.name!r}, not {queue.name!r}.")
        job.queue = queue
        job.status = Status.NEW if step.parents else Status.QUEUED
        await queue._before_enqueue(job)
        keys += [queue.job_id(job.key), links_key(queue.name, job.key), queue.incomplete_key, queue.queued_key]
        argv += [
            queue.serialize(job),
            json.dumps([links_key(steps[i].queue.name, steps[i].job.key) for i in step.children]),
            json.dumps([links_key(steps[i].queue.name, steps[i].job.key) for i in step.parents]),
            job.ttl,
            step.on_failure,
        ]
    reply = await first._script("enqueue_chain", keys, argv)
    state = _text(reply[0])
    if state == "queued":
        for step in steps:
            step.job.queued = int(reply[1])
    return [step.job for step in steps], state


async def parent_results(queue: RedisQueue, job: Job) -> list[Any]:
    """The results of ``job``'s parents, in the order the chain gave them (``[]`` for a first step); one
    read. A parent whose record is missing from the links (it cannot be, once the step is queued, unless
    the links were deleted by hand) gives None."""
    links = of(job) or {}
    if not links.get("parents"):
        return []
    fields = await queue.redis.hgetall(links_key(queue.name, job.key))
    fields = {_text(name): value for name, value in fields.items()}
    order = json.loads(fields.get("parents") or "[]")
    results = []
    for parent in order:
        raw = fields.get(f"r:{parent}")
        results.append(json.loads(raw).get("result") if raw else None)  # a parent may be on another queue
    return results
