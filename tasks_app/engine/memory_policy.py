"""Whether a queue's Redis may evict keys, which would lose accepted jobs without a word.

A Redis shared with a cache often runs ``maxmemory-policy allkeys-lru``: under memory pressure it
deletes keys, job records included, and nothing reports it. Only ``noeviction`` (writes fail with
an error instead) keeps what was acknowledged. The policy is read with ``CONFIG GET``, and where a
managed Redis or an ACL user may not run CONFIG, from ``INFO memory``; when neither answers it is
"unknown", not a guess.

Where it is reported: the ``tasks_app.E013``/``W004`` system check a worker runs at start
(``checks.py``), ``runworker --check``, the dashboard, and the worker's log at start.
"""

from __future__ import annotations

from redis.exceptions import NoPermissionError, ResponseError

SAFE = "noeviction"
UNKNOWN = "unknown"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def read_policy(redis) -> str:
    """The ``maxmemory-policy`` of an asyncio redis-py client's server, or ``UNKNOWN``.

    Raises ``RedisError``/``OSError`` when Redis cannot be reached at all, or refuses the connection itself
    (a database index out of range, a wrong password): the caller says so.
    """
    try:
        reply = await redis.config_get("maxmemory-policy")
        if reply:
            return _text(next(iter(reply.values())))
    except ResponseError as exc:  # CONFIG not allowed (NOPERM) or renamed away on a managed Redis
        _raise_unless_refused(exc)
    try:
        info = await redis.info("memory")
    except ResponseError as exc:
        _raise_unless_refused(exc)
        return UNKNOWN
    policy = info.get("maxmemory_policy")
    return _text(policy) if policy else UNKNOWN


def _raise_unless_refused(exc: ResponseError) -> None:
    # Only "not allowed" and "no such command" mean the policy cannot be read; anything else (the SELECT of
    # a database index out of range) is the connection's own problem, not the policy's.
    if not (isinstance(exc, NoPermissionError) or "unknown command" in str(exc).lower()):
        raise exc


def problem(policy: str, where: str) -> str | None:
    """What to tell an operator about ``policy`` (of the Redis at ``where``, redacted), or None if safe."""
    if policy == SAFE:
        return None
    if policy == UNKNOWN:
        return (
            f"Redis at {where} did not say its maxmemory-policy (CONFIG and INFO were refused), so whether it may "
            "evict job records is unknown. Make sure it is noeviction."
        )
    return (
        f"Redis at {where} has maxmemory-policy {policy}: under memory pressure it deletes keys, so accepted jobs "
        "can vanish without an error. Run CONFIG SET maxmemory-policy noeviction (and set it in redis.conf), "
        "or give the queue a Redis of its own."
    )
