"""Per-object generations: how saves and index jobs agree on which job covers which save.

See :class:`pydotorg.search.models.IndexState` for the protocol.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now

from .models import IndexState


def job_key(content_type: str, object_id: int, generation: int) -> str:
    return f"search:{content_type}:{object_id}:{generation}"


def lock(content_type: str, object_id: int, using: str | None = None) -> int:
    """Lock the object's row until the caller's transaction ends; return its generation.

    Called from a save or delete inside the caller's transaction, so a job for this
    object cannot start reading (its claim waits on this lock) before the save commits.
    """
    with transaction.atomic(using=using):
        state, _ = (
            IndexState.objects.using(using)
            .select_for_update()
            .get_or_create(content_type=content_type, object_id=object_id)
        )
    return state.generation


def lock_many(content_type: str, ids: Iterable[int], using: str | None = None) -> dict[int, int]:
    """:func:`lock` for many objects at once (two queries): ``{object_id: generation}``.

    Rows are locked in id order, as :func:`claim` locks them, so the two cannot deadlock.
    """
    ids = sorted(set(ids))
    with transaction.atomic(using=using):
        rows = IndexState.objects.using(using)
        rows.bulk_create([IndexState(content_type=content_type, object_id=pk) for pk in ids], ignore_conflicts=True)
        locked = rows.select_for_update().filter(content_type=content_type, object_id__in=ids).order_by("object_id")
        return dict(locked.values_list("object_id", "generation"))


def claim(content_type: str, ids: Iterable[int]) -> dict[int, int]:
    """Start a job on ``ids``: bump each generation (waiting for saves in flight); return them.

    Rows are locked in id order so two overlapping batches cannot deadlock.
    """
    ids = sorted(set(ids))
    with transaction.atomic():
        IndexState.objects.bulk_create(
            [IndexState(content_type=content_type, object_id=pk) for pk in ids], ignore_conflicts=True
        )
        rows = IndexState.objects.filter(content_type=content_type, object_id__in=ids)
        list(rows.select_for_update().order_by("object_id").values_list("pk", flat=True))
        rows.update(generation=F("generation") + 1, touched=Now())
        return dict(rows.values_list("object_id", "generation"))


def current(content_type: str, ids: Iterable[int]) -> dict[int, int]:
    return dict(
        IndexState.objects.filter(content_type=content_type, object_id__in=list(ids)).values_list(
            "object_id", "generation"
        )
    )


def touched_since(since: datetime) -> dict[str, list[int]]:
    """Objects a job claimed since ``since``, by type (a rebuild re-applies them after its swap)."""
    result: dict[str, list[int]] = {}
    rows = IndexState.objects.filter(touched__gte=since).order_by("content_type", "object_id")
    for content_type, object_id in rows.values_list("content_type", "object_id").iterator():
        result.setdefault(content_type, []).append(object_id)
    return result
