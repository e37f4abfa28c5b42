"""Scheduling index updates from code that changes content: the enqueue side of search.

(The worker side, which reads objects and writes documents, is :mod:`pydotorg.search.indexer`.)

Everything here runs inside the caller's transaction and goes through tasks_app's outbox
(``enqueue_on_commit``, ``enqueue_many_on_commit``): outbox rows are written with the change,
the jobs reach Redis on commit (or later, from any worker's outbox drain, if Redis was down),
and nothing is enqueued on rollback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from itertools import batched

from tasks_app import enqueue_many_on_commit, enqueue_on_commit

from . import conf, state
from .documents import get_type
from .indexer import BATCH_SIZE


def schedule_index(
    content_type: str, ids: Iterable[int], using: str | None = None, *, deduplicate: bool = False
) -> list[str]:
    """Bring the search index up to date for ``ids`` of ``content_type`` after commit; returns the job keys.

    For bulk writers (feed imports, queryset updates): one ``index_content_batch`` job per
    ``BATCH_SIZE`` ids, all written to the outbox in one INSERT and put on Redis in one
    pipeline on commit. Each job reads the objects when it runs, after the commit, so it
    indexes what was committed, or deletes what is no longer indexable. A single id takes
    the deduplicated per-object path (:func:`schedule_object`). With ``deduplicate``, batches are
    deduplicated the same way (:func:`batch_key`): their objects' rows are locked until the caller's
    transaction ends, which costs about 60 µs per id, so bulk imports (each refresh a new set of ids)
    go without and edits of related objects (a rename made three times is one job) go with. Raises UnknownContentType
    for a type that is not indexed, here in the caller rather than later in a job.
    """
    get_type(content_type)
    unique = sorted({int(pk) for pk in ids})
    if len(unique) == 1:
        return [schedule_object(content_type, unique[0], using=using)]
    calls = [{"content_type": content_type, "ids": list(chunk)} for chunk in batched(unique, BATCH_SIZE)]
    keys = None
    if deduplicate:
        generations = state.lock_many(content_type, unique, using=using)
        keys = [batch_key(content_type, call["ids"], generations) for call in calls]
    return enqueue_many_on_commit("index_content_batch", calls, keys=keys, using=using)


def batch_key(content_type: str, ids: list[int], generations: dict[int, int]) -> str:
    """``search:<type>:batch:<digest of the ids and their generations>``.

    The per-object protocol of :func:`schedule_object`, for a batch: the same ids scheduled again
    before their job starts get the same key (a burst, such as a category renamed three times, is
    one job); once the job has claimed them, their generations moved, so new work gets a new job.
    """
    text = ",".join(f"{pk}:{generations.get(pk, 0)}" for pk in ids)
    return f"search:{content_type}:batch:{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def schedule_object(content_type: str, object_id: int, using: str | None = None) -> str:
    """Schedule ``index_content`` for one object, deduplicated per object; returns the job key.

    Saves made before the job starts share its key (one job); a save made while it
    runs gets the next generation's key (a follow-up job), so it is never lost. The job is debounced
    by ``SEARCH_INDEX_DEBOUNCE_MS`` (``conf.index_debounce``): a burst of saves runs it once, after
    the last save.
    """
    generation = state.lock(content_type, object_id, using=using)
    key = state.job_key(content_type, object_id, generation)
    return enqueue_on_commit(
        "index_content", using=using, key=key, debounce=conf.index_debounce(), content_type=content_type,
        content_id=int(object_id),
    )  # fmt: skip
