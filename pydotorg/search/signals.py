"""Every save and delete of indexed content schedules an index update after commit.

Model signals cover single saves and deletes; blogs' ``entries_changed`` covers the bulk upserts
of a feed refresh. Search knows the apps it indexes; they do not know search.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from pydotorg.blogs.signals import entries_changed

from .documents import TYPES, type_of_model
from .scheduling import schedule_index, schedule_object


def content_changed(sender: type, instance: Any, using: str, **kwargs: Any) -> None:
    spec = type_of_model(sender)
    if spec is None:
        return
    # A feed's delete already scheduled its entries as one batch (see feed_deleting).
    origin = kwargs.get("origin")
    if spec.name == "blog" and origin is not None and getattr(origin, "model", type(origin)) is feed_model():
        return
    schedule_object(spec.name, instance.pk, using=using)


def feed_model() -> type:
    from django.apps import apps

    return apps.get_model("blogs.Feed")


def job_types_changed(sender: type, instance: Any, action: str, reverse: bool, pk_set, using: str, **kwargs) -> None:
    if not action.startswith("post_"):
        return
    if reverse:  # a JobType's jobs changed
        if pk_set:
            schedule_index("job", pk_set, using=using)
    else:
        schedule_object("job", instance.pk, using=using)


def feed_saving(sender: type, instance: Any, using: str, update_fields=None, **kwargs: Any) -> None:
    # Entries carry their feed's name: a rename reindexes them (one batch job per 500).
    if instance.pk is None or (update_fields is not None and "name" not in update_fields):
        return
    old = sender._default_manager.using(using).filter(pk=instance.pk).values_list("name", flat=True).first()
    if old is not None and old != instance.name:
        ids = list(instance.entries.using(using).values_list("pk", flat=True))
        if ids:
            schedule_index("blog", ids, using=using)


def feed_deleting(sender: type, instance: Any, using: str, **kwargs: Any) -> None:
    ids = list(instance.entries.using(using).values_list("pk", flat=True))
    if ids:
        schedule_index("blog", ids, using=using)


def blog_entries_changed(sender: type, ids: list[int], using: str, **kwargs: Any) -> None:
    # Batched jobs, recorded in the sender's transaction and enqueued on commit.
    schedule_index("blog", ids, using=using)


def connect() -> None:
    from django.apps import apps

    for spec in TYPES.values():
        model = spec.model
        post_save.connect(content_changed, sender=model, dispatch_uid=f"search-save-{spec.name}")
        post_delete.connect(content_changed, sender=model, dispatch_uid=f"search-delete-{spec.name}")
    job = apps.get_model("jobs.Job")
    m2m_changed.connect(job_types_changed, sender=job.job_types.through, dispatch_uid="search-job-types")
    feed = apps.get_model("blogs.Feed")
    pre_save.connect(feed_saving, sender=feed, dispatch_uid="search-feed-rename")
    pre_delete.connect(feed_deleting, sender=feed, dispatch_uid="search-feed-delete")
    entries = apps.get_model("blogs.BlogEntry")
    entries_changed.connect(blog_entries_changed, sender=entries, dispatch_uid="search-blog-entries")
