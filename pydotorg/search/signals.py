"""Every save and delete of indexed content schedules an index update after commit.

What is followed comes from the declared document types (pydotorg.search.documents.TYPES), never
from a model named here: each type's model (post_save, post_delete), the bulk-write signals its
app declares (``changed_signals``), and the related objects whose text it shows
(:mod:`pydotorg.search.related`).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save

from . import related
from .documents import TYPES, DocumentType, type_of_model
from .scheduling import schedule_index, schedule_object


def content_changed(sender: type, instance: Any, using: str, **kwargs: Any) -> None:
    spec = type_of_model(sender)
    if spec is None:
        return
    # Deleted with a related object (a feed's entries): that object's delete scheduled them as one batch.
    origin = kwargs.get("origin")
    if origin is not None and (origin.model if isinstance(origin, QuerySet) else type(origin)) in spec.related_links():
        return
    schedule_object(spec.name, instance.pk, using=using)


class BulkChanged:
    """Receiver of an app's bulk-write signal (``ids``, ``using``): batched jobs, recorded in the
    sender's transaction and enqueued on commit."""

    def __init__(self, spec: DocumentType) -> None:
        self.content_type = spec.name

    def __call__(self, sender: type, ids: list[int], using: str, **kwargs: Any) -> None:
        schedule_index(self.content_type, ids, using=using)


def connect() -> None:
    for spec in TYPES.values():
        post_save.connect(content_changed, sender=spec.model, dispatch_uid=f"search-save-{spec.name}")
        post_delete.connect(content_changed, sender=spec.model, dispatch_uid=f"search-delete-{spec.name}")
        for signal in spec.changed_signals:
            signal.connect(
                BulkChanged(spec), sender=spec.model, weak=False, dispatch_uid=f"search-bulk-{spec.name}-{id(signal)}"
            )
    related.connect(TYPES.values())
