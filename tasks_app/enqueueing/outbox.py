"""The transactional outbox behind ``enqueue_on_commit``.

A row is written in the caller's transaction; after commit the job is pushed to Redis and
the row deleted. If Redis was unreachable, the row stays, and any worker's periodic drain
pushes it later, from every database the outbox lives in. Delivery is at-least-once: the
job key deduplicates while the job is pending, and tasks are expected to be idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections, router, transaction
from django.db.models import F
from django.utils import timezone
from saq.job import Job

from . import diversion
from .building import BuiltJob
from .connections import background, get_queue

if TYPE_CHECKING:
    from ..models import OutboxEntry

logger = logging.getLogger("tasks_app.outbox")

# Rows younger than this are left to their own on_commit delivery.
DRAIN_GRACE_S = 2.0
DRAIN_BATCH = 500


def _model() -> type[OutboxEntry]:
    # Looked up, not imported: ``tasks_app`` (and so this module) is imported by settings, before apps load.
    return apps.get_model("tasks_app", "OutboxEntry")


def record(built: BuiltJob, using: str | None = None) -> OutboxEntry:
    """Write the outbox row for ``built`` in the current transaction of ``using``."""
    return (
        _model()
        .objects.using(using or DEFAULT_DB_ALIAS)
        .create(job_key=built.job.key, queue=built.queue, payload=built.job.to_dict())
    )


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
        [model(job_key=item.job.key, queue=item.queue, payload=item.job.to_dict()) for item in built]
    )
    if entries:
        transaction.on_commit(lambda: deliver_many(entries), using=using, robust=True)
    return entries


def _job(entry: OutboxEntry) -> Job:
    return Job(**entry.payload)


def deliver(entry: OutboxEntry) -> None:
    """Push one committed entry to Redis now; on failure leave it for the drain."""
    deliver_many([entry])


def deliver_many(entries: list[OutboxEntry]) -> None:
    """Push committed entries (of one database) to Redis now; on failure leave them for the drain."""
    alias = entries[0]._state.db
    keys = [entry.pk for entry in entries]
    if diversion.target is not None:  # a test's capture, or immediate mode: they take the jobs
        built = [BuiltJob(queue=entry.queue, job=_job(entry)) for entry in entries]
        if diversion.target.take(built) is not None:
            _model().objects.using(alias).filter(pk__in=keys).delete()
            return
    try:
        background.run(_submit(entries), timeout=10 + len(entries) / 1000)
    except Exception as exc:  # Redis down, timeout...: the rows keep the jobs safe
        logger.warning(
            "Redis did not take %d job(s) (first %s: %s); they stay in the outbox and a worker will deliver them.",
            len(entries),
            entries[0].job_key,
            exc,
            extra={"job_key": entries[0].job_key, "task": entries[0].payload.get("function"), "jobs": len(entries)},
        )
        _model().objects.using(alias).filter(pk__in=keys).update(attempts=F("attempts") + 1, last_error=str(exc)[:2000])
        return
    _model().objects.using(alias).filter(pk__in=keys).delete()


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
        cutoff = timezone.now() - timedelta(seconds=grace)
        with transaction.atomic(using=alias):
            entries = list(
                _model()
                .objects.using(alias)
                .select_for_update(skip_locked=True)
                .filter(created__lte=cutoff)
                .order_by("id")[:DRAIN_BATCH]
            )
            if not entries:
                return 0
            asyncio.run_coroutine_threadsafe(_submit(entries), loop).result(timeout=60)
            _model().objects.using(alias).filter(pk__in=[entry.pk for entry in entries]).delete()
        return len(entries)
    finally:
        close_old_connections()


async def _submit(entries: list[OutboxEntry]) -> None:
    by_queue: dict[str, list[Job]] = {}
    for entry in entries:
        by_queue.setdefault(entry.queue, []).append(_job(entry))
    for name, jobs in by_queue.items():
        await get_queue(name).submit_many(jobs)
