"""The worker side of index updates: read objects, write documents, and never leave a stale one.

(The enqueue side, which code that changes content calls, is :mod:`pydotorg.search.scheduling`.)

Two jobs can hold the same object at once (a save while its job runs gets a follow-up
job). If the earlier job's write lands after the later one's, the index would keep the
older text. So after writing, a job checks the objects' generations: if another job
claimed one since, it reads and writes that object again, until nothing moved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from itertools import batched
from typing import Any

from asgiref.sync import sync_to_async

from . import documents, state
from .backends import get_backend

logger = logging.getLogger("pydotorg.search")

# Ids per index_objects call, and so per index_content_batch job: big enough that a 5,000-entry
# feed is 10 jobs, small enough that one call's documents are a modest request.
BATCH_SIZE = 500
# Passes before giving up (the job then fails and is retried, which starts over).
MAX_PASSES = 10


class IndexingRace(RuntimeError):
    pass


async def index_objects(content_type: str, ids: list[int], backend: Any = None) -> dict[str, Any]:
    """Upsert the documents of the indexable objects among ``ids``, remove the others; idempotent.

    Returns ``{"content_type", "upserted": [ids], "deleted": [ids]}``. Raises UnknownContentType
    for a type that is not indexed, the backend's error when a write fails, and IndexingRace
    when the objects kept changing for ``MAX_PASSES`` passes (a job then retries).
    """
    documents.get_type(content_type)  # unknown type: fail before touching anything
    backend = backend or get_backend()
    generations = await sync_to_async(state.claim)(content_type, ids)
    pending = sorted(set(ids))
    upserted: set[int] = set()
    deleted: set[int] = set()
    for _ in range(MAX_PASSES):
        docs, gone = await sync_to_async(documents.load)(content_type, pending)
        await backend.apply(content_type, upserts=docs, deletes=gone)
        upserted |= {doc["object_id"] for doc in docs}
        deleted |= set(gone)
        now = await sync_to_async(state.current)(content_type, pending)
        pending = [pk for pk in pending if now.get(pk) != generations.get(pk)]
        if not pending:
            logger.info(
                "Indexed %s: %d upserted, %d removed",
                content_type,
                len(upserted - deleted),
                len(deleted),
                extra={"content_type": content_type, "ids": ids[:20]},
            )
            return {"content_type": content_type, "upserted": sorted(upserted), "deleted": sorted(deleted)}
        generations.update(now)
    raise IndexingRace(f"{content_type} {pending[:10]} kept changing during {MAX_PASSES} passes; the job will retry.")


async def index_in_batches(
    content_type: str,
    ids: Sequence[int],
    backend: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, int]:
    """:func:`index_objects` here and now, ``BATCH_SIZE`` ids at a time (a reindex, a rebuild's catch-up).

    Returns counts: ``{"upserted": n, "deleted": n}``. ``progress(content_type, done, total)``
    is called after each batch.
    """
    upserted = deleted = done = 0
    for batch in batched(ids, BATCH_SIZE):
        result = await index_objects(content_type, list(batch), backend)
        upserted += len(result["upserted"])
        deleted += len(result["deleted"])
        done += len(batch)
        if progress:
            progress(content_type, done, len(ids))
    return {"upserted": upserted, "deleted": deleted}
