"""Model -> search document: which objects are indexed, and what goes in their documents.

Every document has the common fields ``id`` (``"<type>-<pk>"``, unique across types),
``object_id``, ``content_type``, ``title``, ``description``, ``content``, ``url``,
``created``, ``modified`` and ``visible_until``, plus fields of its own type. Dates
are Unix timestamps (integers), so both backends can sort and filter on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.db.models import Model, Q, QuerySet
from django.utils import timezone
from django.utils.html import strip_tags

from .snippets import strip_markers

# visible_until of documents that never expire (year 3000): one numeric filter serves every type.
FOREVER = 32503680000

Document = dict[str, Any]


class UnknownContentType(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"Unknown search content type {name!r}; the indexed types are {', '.join(TYPES)}. "
            "Register a new one in pydotorg/search/documents.py."
        )


def timestamp(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def text(value: str) -> str:
    # Documents hold plain text: snippets are built from it and must never carry markup.
    value = strip_markers(value or "")
    return (strip_tags(value) if "<" in value else value).strip()


def safe_url(value: str) -> str:
    """Only site paths and http(s) links go into result links (never ``javascript:`` and the like)."""
    value = (value or "").strip()
    if value.startswith("/") and not value.startswith("//"):
        return value
    return value if urlsplit(value).scheme in ("http", "https") else ""


def doc_id(content_type: str, object_id: int) -> str:
    return f"{content_type}-{object_id}"


@dataclass(frozen=True)
class ContentType:
    name: str
    model_label: str
    indexable_filter: Callable[[], Q]
    extra_fields: Callable[[Any], Document]
    related: tuple[str, ...] = ()
    prefetch: tuple[str, ...] = ()

    @property
    def model(self) -> type[Model]:
        return apps.get_model(self.model_label)

    def indexable(self) -> QuerySet:
        """The objects that belong in the index (evaluated now: job expiry depends on the time)."""
        qs = self.model._default_manager.filter(self.indexable_filter())
        if self.related:
            qs = qs.select_related(*self.related)
        if self.prefetch:
            qs = qs.prefetch_related(*self.prefetch)
        return qs

    def to_document(self, obj: Any) -> Document:
        common = {
            "id": doc_id(self.name, obj.pk),
            "object_id": obj.pk,
            "content_type": self.name,
            "title": text(str(getattr(obj, "title", ""))),
            "description": text(getattr(obj, "description", "")),
            "content": text(getattr(obj, "content", "")),
            "url": safe_url(obj.get_absolute_url()),
            "created": timestamp(obj.created),
            "modified": timestamp(obj.updated),
            "visible_until": FOREVER,
        }
        return {**common, **self.extra_fields(obj)}


def _page(page: Any) -> Document:
    return {"path": page.path, "keywords": page.keywords}


def _blog(entry: Any) -> Document:
    return {
        "description": text(entry.summary),
        "feed": entry.feed.name,
        "feed_id": entry.feed_id,
        "published": timestamp(entry.pub_date),
    }


def _job(job: Any) -> Document:
    return {
        "title": text(job.job_title),
        "content": text(job.requirements),
        "company": job.company_name,
        "location": job.location,
        "country": job.country,
        "telecommuting": job.telecommuting,
        "job_types": sorted(t.name for t in job.job_types.all()),
        "category": job.category.name if job.category else "",
        "expires": timestamp(job.expires),
        "visible_until": timestamp(job.expires) or FOREVER,
    }


def _event(event: Any) -> Document:
    return {
        "venue": event.venue,
        "location": event.location,
        "starts": timestamp(event.starts_at),
        "ends": timestamp(event.ends_at),
        "all_day": event.all_day,
    }


def _approved_unexpired() -> Q:
    return Q(status="approved") & (Q(expires__isnull=True) | Q(expires__gt=timezone.now()))


TYPES: dict[str, ContentType] = {
    t.name: t
    for t in (
        ContentType("page", "pages.Page", lambda: Q(is_published=True), _page),
        ContentType("blog", "blogs.BlogEntry", Q, _blog, related=("feed",)),
        ContentType("job", "jobs.Job", _approved_unexpired, _job, related=("category",), prefetch=("job_types",)),
        ContentType("event", "events.Event", Q, _event),
    )
}


# Type-specific fields that are worth matching; the database backend searches them as one text column.
EXTRA_TEXT_FIELDS = ("keywords", "company", "location", "country", "venue", "feed", "category", "job_types")


def extra_text(doc: Document) -> str:
    values = (doc.get(name) for name in EXTRA_TEXT_FIELDS)
    return " ".join(" ".join(v) if isinstance(v, list) else str(v) for v in values if v)


def get_type(name: str) -> ContentType:
    try:
        return TYPES[name]
    except (KeyError, TypeError):
        raise UnknownContentType(name) from None


def type_of_model(model: type[Model]) -> ContentType | None:
    label = model._meta.label
    return next((t for t in TYPES.values() if t.model_label == label), None)


def load(content_type: str, ids: list[int]) -> tuple[list[Document], list[int]]:
    """Documents for the indexable objects among ``ids``, and the ids to remove from the index."""
    spec = get_type(content_type)
    found = {obj.pk: spec.to_document(obj) for obj in spec.indexable().filter(pk__in=ids)}
    return list(found.values()), [pk for pk in ids if pk not in found]


def chunk_after(content_type: str, after: int, size: int) -> tuple[list[Document], int | None]:
    """The next ``size`` indexable documents with pk > ``after`` (keyset paging keeps memory flat)."""
    spec = get_type(content_type)
    objs = list(spec.indexable().filter(pk__gt=after).order_by("pk")[:size])
    return [spec.to_document(obj) for obj in objs], (objs[-1].pk if objs else None)
