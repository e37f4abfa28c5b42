"""Search tasks: keep the index in step with the database, and rebuild it without downtime."""

from __future__ import annotations

from typing import Any

from tasks_app import task

from . import indexer


@task
async def index_content(ctx: dict[str, Any], content_type: str, content_id: int) -> dict[str, Any]:
    """Upsert one object's document when it is indexable, delete it otherwise (idempotent)."""
    return await indexer.index_objects(content_type, [int(content_id)])


@task
async def index_content_batch(ctx: dict[str, Any], content_type: str, ids: list[int]) -> dict[str, Any]:
    """The same for many objects of one type (bulk imports, feed refreshes)."""
    return await indexer.index_objects(content_type, [int(pk) for pk in ids])
