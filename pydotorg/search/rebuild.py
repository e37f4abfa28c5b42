"""Zero-downtime rebuild: build a fresh index beside the live one, then swap it in.

1. The backend creates a new index (Meilisearch: a temporary index, settings applied
   and awaited first; database: a new generation of rows).
2. Indexable rows are streamed from the database in keyset-paged chunks, so memory
   stays flat however many rows there are, and sent in batches; every batch is
   awaited and a failed one fails the rebuild.
3. The new index is swapped in atomically and the old one dropped.
4. Edits indexed into the old index while the rebuild ran are re-applied to the new one.

A failure at any step deletes the new index and re-raises: the live index keeps serving.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from . import documents, indexer, state
from .backends import get_backend
from .backends.base import BaseSearchBackend

logger = logging.getLogger("pydotorg.search")

CHUNK_SIZE = 1000
# A chunk's rows are held in memory and sent as one request: a million can make a request of
# gigabytes (and 10**22 overflowed the query's bigint LIMIT).
MAX_CHUNK_SIZE = 100_000
# Objects claimed this long before the rebuild started are re-applied too: clocks and
# transactions in flight at the start are not exact.
CATCH_UP_SLACK = timedelta(seconds=60)

Progress = Callable[[str, int, int], None]  # (content type, done, total of that type)


def _counts() -> dict[str, int]:
    return {name: spec.indexable().count() for name, spec in documents.TYPES.items()}


async def rebuild_index(
    backend: BaseSearchBackend | None = None, chunk_size: int = CHUNK_SIZE, progress: Progress | None = None
) -> dict[str, Any]:
    backend = backend or get_backend()
    started, clock = timezone.now(), time.monotonic()
    totals = await sync_to_async(_counts)()
    logger.info("Search rebuild (%s) started: %s", backend.name, totals, extra={"totals": totals})
    rebuild = await backend.start_rebuild()
    added: dict[str, int] = {}
    try:
        for content_type in documents.TYPES:
            added[content_type], after = 0, 0
            while True:
                docs, last = await sync_to_async(documents.chunk_after)(content_type, after, chunk_size)
                if not docs:
                    break
                await rebuild.add(docs)
                added[content_type] += len(docs)
                after = last
                if progress:
                    progress(content_type, added[content_type], totals[content_type])
            logger.info("Search rebuild: %d %s documents added", added[content_type], content_type)
    except BaseException:
        logger.error("Search rebuild failed while adding documents; the live index is unchanged")
        await rebuild.discard()
        raise
    await rebuild.commit()  # discards the new index itself if the swap fails
    caught_up = await catch_up(backend, started - CATCH_UP_SLACK)
    seconds = time.monotonic() - clock
    result = {"backend": backend.name, "documents": added, "caught_up": caught_up, "seconds": round(seconds, 2)}
    logger.info("Search rebuild done in %.1f s: %s", seconds, added, extra=result)
    return result


async def catch_up(backend: BaseSearchBackend, since) -> int:
    """Re-apply objects that jobs indexed since ``since`` (they may have gone to the old index)."""
    touched = await sync_to_async(state.touched_since)(since)
    count = 0
    for content_type, ids in touched.items():
        if content_type not in documents.TYPES:
            continue
        await indexer.index_in_batches(content_type, ids, backend)
        count += len(ids)
    return count
