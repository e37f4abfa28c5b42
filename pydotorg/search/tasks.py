"""Search tasks: keep the index in step with the database, and rebuild it without downtime.

Errors are not swallowed: if the backend is down, the job fails and SAQ retries it
with backoff (tasks_app's default retries), and the outbox keeps it if Redis is down.
"""

from __future__ import annotations

from typing import Any

from tasks_app import task

from . import indexer, rebuild
from .ids import RowId


@task
async def index_content(ctx: dict[str, Any], content_type: str, content_id: RowId) -> dict[str, Any]:
    """Upsert one object's document when it is indexable, delete it otherwise (idempotent)."""
    return await indexer.index_objects(content_type, [int(content_id)])


@task
async def index_content_batch(ctx: dict[str, Any], content_type: str, ids: list[RowId]) -> dict[str, Any]:
    """The same for many objects of one type (bulk imports, feed refreshes)."""
    return await indexer.index_objects(content_type, [int(pk) for pk in ids])


@task(timeout=3600, retries=1, retry_delay=300.0)
async def rebuild_search_index(ctx: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the whole index beside the live one and swap it in (cron: 0 2 * * *)."""
    return await rebuild.rebuild_index()
