"""Search follows the text it shows: edits of related objects re-index the documents that show them.

A document type declares ``related = {RelatedModel: Related(path, fields)}``. Then:

- saving an object of ``RelatedModel`` that changes one of ``fields`` (a job category renamed)
  re-indexes every object whose document shows it, after commit (post_save, so the job reads the
  saved row; pre_save only compares the old values);
- deleting one (a job type deleted) does too: the affected ids are read in pre_delete, before the
  cascade or SET_NULL removes the link, and scheduled in the delete's own transaction;
- when ``path`` is a many-to-many field, adding, removing or clearing links from either side
  re-indexes the objects on the indexed side.

Each goes through :func:`pydotorg.search.scheduling.schedule_index`: one ``index_content_batch``
job per 500 objects, written to the outbox in the transaction, keyed so that a burst of the same
change is one job.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Model
from django.db.models.signals import m2m_changed, post_save, pre_delete, pre_save

from .documents import DocumentType, Related
from .scheduling import schedule_index, schedule_object

# The document types that show each related model, with how they reach it (filled by connect()).
FOLLOWED: dict[type[Model], list[tuple[DocumentType, Related]]] = {}
# Many-to-many through models -> (document type, related model).
M2M: dict[type[Model], list[tuple[DocumentType, type[Model]]]] = {}
# Set by pre_save on a related object: the names of the types whose shown fields it changes.
PENDING = "_search_related_changes"


def _shown_fields(model: type[Model], link: Related) -> list[str]:
    """Attribute names of the declared fields (``None``: every concrete field)."""
    names = link.fields if link.fields is not None else [f.name for f in model._meta.concrete_fields]
    return [model._meta.get_field(name).attname for name in names]


def related_saving(sender: type[Model], instance: Model, raw: bool = False, using: str | None = None,
                   update_fields: Iterable[str] | None = None, **kwargs: Any) -> None:  # fmt: skip
    instance.__dict__.pop(PENDING, None)  # left by a save that failed after its pre_save
    if raw or instance._state.adding or instance.pk is None:
        return  # a new object is shown by no document yet; fixtures are loaded as they are
    followers = FOLLOWED.get(sender, [])
    written = set(update_fields) if update_fields is not None else None
    watched = {
        spec.name: [name for name in _shown_fields(sender, link) if written is None or name in written or
                    name.removesuffix("_id") in written]
        for spec, link in followers
    }  # fmt: skip
    names = sorted({name for fields in watched.values() for name in fields})
    if not names:
        return
    old = sender._default_manager.using(using).filter(pk=instance.pk).values(*names).first()
    if old is None:
        return
    changed = [spec for spec, fields in watched.items() if any(old[n] != getattr(instance, n) for n in fields)]
    if changed:
        instance.__dict__[PENDING] = changed


def related_saved(sender: type[Model], instance: Model, using: str | None = None, **kwargs: Any) -> None:
    changed = instance.__dict__.pop(PENDING, None)
    if not changed:
        return
    for spec, _link in FOLLOWED.get(sender, []):
        if spec.name in changed:
            _schedule(spec, spec.related_ids(sender, instance.pk, using=using), using)


def related_deleting(sender: type[Model], instance: Model, using: str | None = None, **kwargs: Any) -> None:
    # Collector.delete() sends pre_delete inside its transaction and before it clears the links,
    # so the ids are read while the links still exist, and the outbox rows commit with the delete.
    for spec, _link in FOLLOWED.get(sender, []):
        _schedule(spec, spec.related_ids(sender, instance.pk, using=using), using)


def links_changed(sender: type[Model], instance: Model, action: str, pk_set: set[Any] | None,
                  using: str | None = None, **kwargs: Any) -> None:  # fmt: skip
    for spec, model in M2M.get(sender, []):
        if isinstance(instance, spec.model):  # job.job_types.add(...): this one document
            if action.startswith("post_"):
                schedule_object(spec.name, instance.pk, using=using)
        elif action == "pre_clear":  # job_type.jobs.clear(): pk_set is None, so read the links first
            _schedule(spec, spec.related_ids(model, instance.pk, using=using), using)
        elif action in ("post_add", "post_remove") and pk_set:  # job_type.jobs.add(...): pk_set are jobs
            _schedule(spec, pk_set, using)


def _schedule(spec: DocumentType, ids: Iterable[Any], using: str | None) -> None:
    ids = list(ids)
    if ids:
        schedule_index(spec.name, ids, using=using, deduplicate=True)


def connect(types: Iterable[DocumentType]) -> None:
    """Follow the related models of ``types`` (called once, when the search app is ready)."""
    FOLLOWED.clear()
    M2M.clear()
    for spec in types:
        for model, link in spec.related_links().items():
            FOLLOWED.setdefault(model, []).append((spec, link))
            field = spec.model._meta.get_field(link.path.split("__")[0])
            if "__" not in link.path and field.many_to_many:
                through = getattr(field, "through", None) or field.remote_field.through  # the field, or its reverse
                M2M.setdefault(through, []).append((spec, model))
    for model in FOLLOWED:
        uid = f"search-related-{model._meta.label_lower}"
        pre_save.connect(related_saving, sender=model, dispatch_uid=f"{uid}-pre-save")
        post_save.connect(related_saved, sender=model, dispatch_uid=f"{uid}-post-save")
        pre_delete.connect(related_deleting, sender=model, dispatch_uid=f"{uid}-pre-delete")
    for through in M2M:
        m2m_changed.connect(links_changed, sender=through, dispatch_uid=f"search-m2m-{through._meta.label_lower}")
