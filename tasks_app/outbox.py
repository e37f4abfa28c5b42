"""The transactional outbox behind ``enqueue_on_commit``.

A row is written in the caller's transaction; after commit the job is pushed
to Redis and the row deleted. If Redis was unreachable, the row stays, and the
worker's periodic drain pushes it later. Delivery is at-least-once: the job key
deduplicates while the job is pending, and tasks are expected to be idempotent.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone
from saq.job import Job

from .models import OutboxEntry
from .queues import background

logger = logging.getLogger("tasks_app.outbox")

# Rows younger than this are left to their own on_commit delivery.
DRAIN_GRACE_S = 2.0


def record(job: Job, using: str | None = None) -> OutboxEntry:
    return OutboxEntry.objects.using(using or DEFAULT_DB_ALIAS).create(
        job_key=job.key, queue=job.meta["queue"], payload=job.to_dict()
    )


def _job_from(entry: OutboxEntry) -> Job:
    return Job(**entry.payload)


def deliver(entry: OutboxEntry) -> None:
    """Push one committed entry to Redis now; on failure leave it for the drain."""
    from .enqueue import enqueue_job

    try:
        background.run(enqueue_job(_job_from(entry), entry.queue), timeout=10)
    except Exception as exc:  # Redis down, timeout...: the row keeps the job safe
        logger.warning(
            "Redis did not take job %s (%s); it stays in the outbox and the worker will deliver it.",
            entry.job_key,
            exc,
            extra={"job_key": entry.job_key, "task": entry.payload.get("function")},
        )
        OutboxEntry.objects.using(entry._state.db).filter(pk=entry.pk).update(
            attempts=entry.attempts + 1, last_error=str(exc)[:2000]
        )
        return
    OutboxEntry.objects.using(entry._state.db).filter(pk=entry.pk).delete()


def _pending(grace: float, limit: int) -> list[OutboxEntry]:
    cutoff = timezone.now() - timedelta(seconds=grace)
    return list(OutboxEntry.objects.filter(created__lte=cutoff).order_by("id")[:limit])


async def drain(grace: float = DRAIN_GRACE_S, limit: int = 500) -> int:
    """Push outbox rows older than ``grace`` seconds to Redis; returns how many went."""
    from .enqueue import enqueue_job

    entries = await sync_to_async(_pending)(grace, limit)
    delivered = []
    for entry in entries:
        await enqueue_job(_job_from(entry), entry.queue)
        delivered.append(entry.pk)
    if delivered:
        await OutboxEntry.objects.filter(pk__in=delivered).adelete()
        logger.info("Delivered %d job(s) from the outbox", len(delivered), extra={"delivered": len(delivered)})
    return len(delivered)
