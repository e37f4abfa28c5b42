"""How an ``AtomicRedisQueue`` stores a job: JSON whose first fields are its state and times (the header
``engine/lua/codec.py`` reads and rewrites), then SAQ's other fields."""

from __future__ import annotations

import dataclasses
import json
import math
import re

from saq.job import Job, Status

from ..exceptions import JobNotStorable

# A worker id is written into the job header unescaped, so it must not need escaping in JSON.
WORKER_ID = re.compile(r"[\w.:-]{1,180}", re.ASCII)

# The hand-written pieces in use. Only bench/pieces.py turns one off (in processes of its own), to
# measure it against the plain alternative: redis-py's Script calls, SAQ's Job.to_dict(), cjson in Lua.
PIECES = {"pipelining": True, "serializer": True, "header_first": True}

HEADER_FIELDS = ("status", "attempts", "started", "touched", "completed", "worker_id", "queued", "scheduled")
# The job's other fields and their defaults (a default_factory's default is its product's "empty").
BODY_FIELDS = (
    *(
        (field.name, {} if field.default_factory is dict else field.default)
        for field in dataclasses.fields(Job)
        if field.name not in (*HEADER_FIELDS, "priority") and field.default_factory in (dict, dataclasses.MISSING)
    ),
    ("key", None),  # a default_factory of its own: always written
)


# ``json.dumps(data, allow_nan=False)``, without building the encoder anew on every call.
_strict_json = json.JSONEncoder(allow_nan=False).encode


def _whole(value: float | None) -> int:
    # Header times are whole non-negative numbers (the scripts' patterns read digits only).
    return max(int(value or 0), 0)


# Kept, measured against SAQ's Job.to_dict() + json.dumps (header first as here) by bench/pieces.py
# (--variants all,no-serializer --workloads noop,enqueue; 2 cores shared with 7 other sessions): CPU
# per job 1.10x on enqueue_many of 2,000 (75.5 vs 82.7 us), 1.04x-1.17x on no-op jobs through
# runworker (two runs, the machine quiet and loaded); peers.py with it replaced: no-op CPU 1.33x.
def serialize(job: Job) -> str:
    """``job`` as JSON with the header first. Raises ``ValueError`` for a worker id that would need
    escaping, ``JobNotStorable`` for data JSON cannot hold."""
    worker = job.worker_id
    if worker is not None and not WORKER_ID.fullmatch(worker):
        raise ValueError(f"Worker id {worker!r} must be 1-180 letters, digits or . _ : - characters.")
    if not PIECES["header_first"] or not PIECES["serializer"]:
        return _serialize_plain(job)
    # Job.to_dict(), without the header fields, and without looking up the fields every time.
    data = {}
    for name, default in BODY_FIELDS:
        value = getattr(job, name)
        if value is default or (type(value) is type(default) and value == default):
            continue
        if name == "queue":
            value = value.name if value else None
            if value is None:
                continue
        elif name == "meta" and (not value or "limits" in value):
            continue  # limits: first, after the header (below)
        data[name] = value
    header = (
        f'{{"status": "{Status(job.status).value}", "attempts": {int(job.attempts)}, '
        f'"started": {_whole(job.started)}, "touched": {_whole(job.touched)}, '
        f'"completed": {_whole(job.completed)}, "worker_id": {"null" if worker is None else json.dumps(worker)}, '
        f'"queued": {_whole(job.queued)}, "scheduled": {_whole(math.ceil(job.scheduled or 0))}, '
    )
    if job.priority:
        header += _priority_field(job)
    try:
        if job.meta and "limits" in job.meta:
            header += _limits_field(job.meta)
        body = _strict_json(data)  # NaN is not JSON: other readers would choke
    except (TypeError, ValueError, RecursionError) as exc:
        raise JobNotStorable(job.key, exc) from None
    return header + body[1:]


def _limits_field(meta: dict) -> str:
    # A limited job's meta, its "limits" entry first, right after the header (and priority): where the
    # scripts read it (engine/lua/codec.py's limits_of). Its text needs no escaping (engine/limits.py).
    return f'"meta": {_strict_json({"limits": meta["limits"], **meta})}, '


def _priority_field(job: Job) -> str:
    # Not 0: right after the header, where the scripts read it (engine/lua/codec.py's priority_of)
    # without decoding the job; a job of priority 0 is stored as it always was.
    priority = job.priority
    if isinstance(priority, bool) or not isinstance(priority, int) or not -100 <= priority <= 100:
        raise JobNotStorable(job.key, ValueError(f"priority={priority!r} is not a whole number from -100 to 100"))
    return f'"priority": {priority}, '


def _serialize_plain(job: Job) -> str:
    # bench/pieces.py's alternatives: SAQ's to_dict() dumped by json, with or without the header first.
    data = job.to_dict()
    try:
        if not PIECES["header_first"]:
            return json.dumps(data)
        header = {name: data.pop(name, None) for name in HEADER_FIELDS}
        header["status"] = Status(job.status).value
        for name in HEADER_FIELDS[1:]:
            if name != "worker_id":
                header[name] = _whole(math.ceil(header[name] or 0))
        priority = _priority_field(job) if data.pop("priority", 0) else ""
        if "limits" in (data.get("meta") or {}):
            priority += _limits_field(data.pop("meta"))
        return json.dumps(header)[:-1] + ", " + priority + json.dumps(data)[1:]
    except (TypeError, ValueError, RecursionError) as exc:
        raise JobNotStorable(job.key, exc) from None


def drop_unstorable(job: Job, cause: BaseException) -> str:
    """Make ``job`` storable after ``cause`` (``JobNotStorable``): its result is dropped, and each
    ``meta`` entry JSON cannot hold. Returns the error to record on the failed attempt."""
    job.result = None
    dropped = []
    for name, value in list(job.meta.items()):
        try:
            json.dumps({name: value}, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            dropped.append(name)
            del job.meta[name]
    note = f" Dropped from meta: {', '.join(map(str, dropped))}." if dropped else ""
    return f"{cause} The attempt failed and is not retried: it would fail the same way.{note}"
