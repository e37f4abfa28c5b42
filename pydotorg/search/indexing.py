"""Scheduling index updates from code that changes content: the enqueue side of search.

Everything here runs inside the caller's transaction and goes through tasks_app's
``enqueue_on_commit``: an outbox row is written with the change, the job reaches
Redis on commit (or later, from the worker's outbox drain, if Redis was down), and
nothing is enqueued on rollback.
"""

from __future__ import annotations

from collections.abc import Iterable

from tasks_app import enqueue_on_commit

from . import state

# Ids per index_content_batch job: big enough that a 5,000-entry feed is 10 jobs,
# small enough that one job's documents are a modest request.
BATCH_SIZE = 500


def schedule_index(content_type: str, ids: Iterable[int], using: str | None = None) -> None:
    """Bring the search index up to date for ``ids`` of ``content_type`` after commit.

    For bulk writers (feed imports, queryset updates): one ``index_content_batch`` job
    per chunk of ``BATCH_SIZE`` ids. Each job reads the objects when it runs, after the
    commit, so it indexes what was committed, or deletes what is no longer indexable.
    A single id takes the deduplicated per-object path.
    """
    from .documents import get_type

    get_type(content_type)  # an unknown type is an error here, in the caller, not later in a job
    unique = sorted({int(pk) for pk in ids})
    if len(unique) == 1:
        schedule_object(content_type, unique[0], using=using)
        return
    for start in range(0, len(unique), BATCH_SIZE):
        enqueue_on_commit(
            "index_content_batch", using=using, content_type=content_type, ids=unique[start : start + BATCH_SIZE]
        )


def schedule_object(content_type: str, object_id: int, using: str | None = None) -> str:
    """Schedule ``index_content`` for one object, deduplicated per object; returns the job key.

    Saves made before the job starts share its key (one job); a save made while it
    runs gets the next generation's key (a follow-up job), so it is never lost.
    """
    generation = state.lock(content_type, object_id, using=using)
    key = state.job_key(content_type, object_id, generation)
    return enqueue_on_commit(
        "index_content", using=using, key=key, content_type=content_type, content_id=int(object_id)
    )
