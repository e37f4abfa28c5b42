"""The worker side of index updates: read objects, write documents, and never leave a stale one.

Two jobs can hold the same object at once (a save while its job runs gets a follow-up
job). If the earlier job's write lands after the later one's, the index would keep the
older text. So after writing, a job checks the objects' generations: if another job
claimed one since, it reads and writes that object again, until nothing moved.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import sync_to_async

from . import documents, state
from .backends import get_backend

logger = logging.getLogger("pydotorg.search")

# Passes before giving up (the job then fails and is retried, which starts over).
MAX_PASSES = 10


class IndexingRace(RuntimeError):
    pass


async def index_objects(content_type: str, ids: list[int], backend: Any = None) -> dict[str, Any]:
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
