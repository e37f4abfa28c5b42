"""The transactional outbox behind ``enqueue_on_commit``.

A row is written in the caller's transaction; after commit the job is pushed to Redis and
the row deleted. If Redis was unreachable, the row stays, and any worker's periodic drain
pushes it later, from every database the outbox lives in. A row may be delivered twice (its commit's
delivery came late, after a drain took the row; or a reply was lost): its job carries the row's token
(``engine/records.OUTBOX_TOKEN``), and the enqueue script answers a second delivery with the job the
first one wrote, pending or ended, in the same atomic step. It runs once, while its record is kept
(its ``ttl``); tasks are still expected to be idempotent (a worker may die mid-job).

A row that cannot become a job whatever Redis does (its queue is no longer in ``SAQ["QUEUES"]``,
its payload no longer fits SAQ's ``Job``) is set aside instead of failing the rows delivered with
it: ``attempts`` + 1, ``last_error`` says what to fix, ``retry_at`` keeps the drain off it for a
while (doubling, up to an hour; a new process or new queue settings try it at once). It is logged
once per problem and never deleted. A Redis outage is not the row's fault: it leaves every row.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections, router, transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from redis.exceptions import RedisError
from saq.job import Job

from .. import conf
from ..backoff import backoff
from ..engine import records
from . import chain_steps, diversion
from .building import BuiltJob
from .connections import background, get_queue

if TYPE_CHECKING:
    from ..models import OutboxEntry

logger = logging.getLogger("tasks_app.outbox")

# Rows younger than this are left to their own on_commit delivery.
DRAIN_GRACE_S = 2.0
DRAIN_BATCH = 500
# A row that cannot become a job is left alone this long, doubling with each attempt, up to the cap.
SET_ASIDE_S = 60.0
SET_ASIDE_MAX_S = 3600.0
# Redis (or the network to it) failing: never the fault of one row.
OUTAGE_ERRORS = (RedisError, OSError)

# (process, database, configured queues) for which set-aside rows were already retried regardless of
# ``retry_at``: a restart or new queue settings may have fixed them, so those retry at once.
_retried_after_start: set[tuple[int, str, frozenset[str]]] = set()


def _model() -> type[OutboxEntry]:
    # Looked up, not imported: ``tasks_app`` (and so this module) is imported by settings, before apps load.
    return apps.get_model("tasks_app", "OutboxEntry")


def record(built: BuiltJob, using: str | None = None) -> OutboxEntry:
    """Write the outbox row for ``built`` in the current transaction of ``using``."""
    return (
        _model()
        .objects.using(using or DEFAULT_DB_ALIAS)
        .create(job_key=built.job.key, queue=built.queue, payload=_payload(built))
    )


def _payload(built: BuiltJob) -> dict:
    """The row's job, marked with a token of the row's own (``meta["outbox"]``), so that a second delivery
    finds the job this row already wrote instead of enqueuing it anew (``engine/records.OUTBOX_TOKEN``)."""
    payload = built.job.to_dict()
    payload["meta"] = {**(payload.get("meta") or {}), records.OUTBOX_TOKEN: uuid.uuid4().hex}
    return payload


def on_commit(built: BuiltJob, using: str | None = None, then: Callable[[], None] | None = None) -> OutboxEntry:
    """Record ``built`` now and deliver it when the transaction commits (``then`` runs after)."""
    entry = record(built, using)
    transaction.on_commit(lambda: deliver(entry), using=using, robust=True)
    if then is not None:
        transaction.on_commit(then, using=using, robust=True)
    return entry


def on_commit_many(built: list[BuiltJob], using: str | None = None) -> list[OutboxEntry]:
    """Record many jobs in one INSERT now, and deliver them together (one pipeline per queue) on commit."""
    alias = using or DEFAULT_DB_ALIAS
    model = _model()
    entries = model.objects.using(alias).bulk_create(
        [model(job_key=item.job.key, queue=item.queue, payload=_payload(item)) for item in built]
    )
    if entries:
        transaction.on_commit(lambda: deliver_many(entries), using=using, robust=True)
    return entries


Ready = list[tuple["OutboxEntry", Job]]


def _prepare(entries: list[OutboxEntry], configured: set[str]) -> tuple[Ready, dict[int, str]]:
    """Each entry's job, or (by primary key) why the entry cannot become one."""
    ready: Ready = []
    unusable: dict[int, str] = {}
    for entry in entries:
        if entry.queue not in configured:
            unusable[entry.pk] = (
                f"queue {entry.queue!r} is not in SAQ['QUEUES'] (configured: {sorted(configured)}): "
                "add it back or delete this outbox entry"
            )
            continue
        try:
            job = Job(**entry.payload)
        except Exception as exc:  # e.g. a field SAQ renamed or dropped since the row was written
            unusable[entry.pk] = (
                f"the payload no longer makes a SAQ Job ({type(exc).__name__}: {exc}); the installed SAQ "
                "differs from the one that recorded it: enqueue the task again and delete this outbox entry"
            )
            continue
        ready.append((entry, job))
    return ready, unusable


def _set_aside(alias: str, entries: list[OutboxEntry], unusable: dict[int, str]) -> None:
    """Record why each of ``unusable`` cannot become a job and keep the drain off it for a while (from
    now on the database's clock, which the drain compares ``retry_at`` with)."""
    changed = []
    for entry in entries:
        message = unusable.get(entry.pk)
        if message is None:
            continue
        first = message != entry.last_error
        entry.attempts += 1
        entry.last_error = message[:2000]
        delay = backoff(entry.attempts, SET_ASIDE_S, SET_ASIDE_MAX_S)
        entry.retry_at = Now() + timedelta(seconds=delay)
        changed.append(entry)
        (logger.error if first else logger.debug)(
            "Outbox entry %s (job %s) is set aside, the other jobs go on: %s. It is tried again in %.0f s.",
            entry.pk,
            entry.job_key,
            message,
            delay,
            extra={
                "job_key": entry.job_key,
                "task": entry.payload.get("function") if isinstance(entry.payload, dict) else None,
                "queue": entry.queue,
                "outbox_id": entry.pk,
                "database": alias,
                "attempts": entry.attempts,
                "error": message,
            },
        )
    if changed:
        rows = _model().objects.using(alias)
        rows.bulk_update(changed, ["attempts", "last_error", "retry_at"])
        retry_at = dict(rows.filter(pk__in=[entry.pk for entry in changed]).values_list("pk", "retry_at"))
        for entry in changed:  # the times the database set, in place of the expression
            entry.retry_at = retry_at.get(entry.pk)


def deliver(entry: OutboxEntry) -> None:
    """Push one committed entry to Redis now; on failure leave it for the drain."""
    deliver_many([entry])


def deliver_many(entries: list[OutboxEntry]) -> None:
    """Push committed entries (of one database) to Redis now; on failure leave them for the drain."""
    alias = entries[0]._state.db
    ready, unusable = _prepare(entries, set(conf.queues()))
    if ready and (target := diversion.current()) is not None:  # a test's capture, or immediate mode
        target.take(chain_steps.diverted([BuiltJob(queue=entry.queue, job=job) for entry, job in ready]))
    elif ready:
        try:
            unusable.update(background.run(_submit(ready), timeout=10 + len(ready) / 1000))
        except Exception as exc:  # Redis down, timeout...: the rows keep the jobs safe
            _left_for_the_drain(alias, [entry for entry, _ in ready], exc)
            ready = []
    delivered = [entry.pk for entry, _ in ready if entry.pk not in unusable]
    if delivered:
        _model().objects.using(alias).filter(pk__in=delivered).delete()
    _set_aside(alias, entries, unusable)


def _left_for_the_drain(alias: str, entries: list[OutboxEntry], exc: Exception) -> None:
    logger.warning(
        "Redis did not take %d job(s) (first %s: %s); they stay in the outbox and a worker will deliver them.",
        len(entries),
        entries[0].job_key,
        exc,
        extra={"job_key": entries[0].job_key, "task": entries[0].payload.get("function"), "jobs": len(entries)},
    )
    keys = [entry.pk for entry in entries]
    _model().objects.using(alias).filter(pk__in=keys).update(attempts=F("attempts") + 1, last_error=str(exc)[:2000])


def outbox_databases() -> list[str]:
    """Every database alias that holds an outbox table (where tasks_app's models migrate)."""
    return [alias for alias in connections if router.allow_migrate_model(alias, _model())]


async def drain(grace: float = DRAIN_GRACE_S) -> int:
    """Push outbox rows older than ``grace`` seconds to Redis, from every outbox database.

    Rows are locked while being delivered (``SKIP LOCKED``), so workers draining at once never
    deliver one row twice. Returns how many jobs went.
    """
    loop = asyncio.get_running_loop()
    delivered = 0
    for alias in outbox_databases():
        delivered += await sync_to_async(_drain, thread_sensitive=False)(alias, grace, loop)
    if delivered:
        logger.info("Delivered %d job(s) from the outbox", delivered, extra={"delivered": delivered})
    return delivered


def _drain(alias: str, grace: float, loop: asyncio.AbstractEventLoop) -> int:
    # Runs in a thread of its own: its connection is opened and cleaned here.
    close_old_connections()
    try:
        # The database's clock, as the rows' times: this worker's may be off (a skewed host would
        # take rows its web processes are still delivering, and run their jobs twice).
        configured = set(conf.queues())
        due = Q(retry_at__isnull=True) | Q(retry_at__lte=Now())
        start = (os.getpid(), alias, frozenset(configured))
        if start not in _retried_after_start:  # the first drain since a (re)start or a settings change
            due |= Q(retry_at__isnull=False)
        outage: BaseException | None = None
        with transaction.atomic(using=alias):
            entries = list(
                _model()
                .objects.using(alias)
                .select_for_update(skip_locked=True)
                .filter(due, created__lte=Now() - timedelta(seconds=grace))
                .order_by("id")[:DRAIN_BATCH]
            )
            if not entries:
                _retried_after_start.add(start)
                return 0
            ready, unusable = _prepare(entries, configured)
            delivered = []
            if ready:
                try:
                    unusable.update(asyncio.run_coroutine_threadsafe(_submit(ready), loop).result(timeout=60))
                except OUTAGE_ERRORS as exc:  # every row stays for the next drain, none is to blame
                    outage = exc
                else:
                    delivered = [entry.pk for entry, _ in ready if entry.pk not in unusable]
                    _model().objects.using(alias).filter(pk__in=delivered).delete()
            _set_aside(alias, entries, unusable)
        if outage is not None:
            raise outage  # the worker logs an outage once, and once when Redis is back
        if len(entries) < DRAIN_BATCH:  # every row set aside was tried in this run
            _retried_after_start.add(start)
        return len(delivered)
    finally:
        close_old_connections()


async def _submit(ready: Ready) -> dict[int, str]:
    """Send the jobs, one pipeline per queue; returns, by primary key, the entries SAQ refused.

    A Redis outage raises (no entry is to blame). Any other error from a queue's pipeline is
    narrowed down by sending that queue's jobs one by one.
    """
    by_queue: dict[str, Ready] = {}
    for entry, job in ready:
        by_queue.setdefault(entry.queue, []).append((entry, job))
    rejected: dict[int, str] = {}
    for name, items in by_queue.items():
        try:
            queue = get_queue(name)
        except OUTAGE_ERRORS:
            raise
        except Exception as exc:  # e.g. a URL redis-py cannot parse
            for entry, _ in items:
                rejected[entry.pk] = f"queue {name!r} cannot be opened ({type(exc).__name__}: {exc}): fix SAQ['QUEUES']"
            continue
        try:
            if plain := await chain_steps.send([job for _, job in items]):  # a chain's row: its own script
                await records.submit_many(queue, plain)
        except OUTAGE_ERRORS:
            raise
        except Exception:
            for entry, job in items:
                try:
                    if await chain_steps.send([job]):
                        await records.submit_many(queue, [job])
                except OUTAGE_ERRORS:
                    raise
                except Exception as exc:
                    rejected[entry.pk] = (
                        f"SAQ refused the job ({type(exc).__name__}: {exc}): "
                        "enqueue the task again and delete this outbox entry"
                    )
    return rejected
