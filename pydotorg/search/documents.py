"""Model -> search document: which objects are indexed, and what goes in their documents.

Every document has the common fields ``id`` (``"<type>-<pk>"``, unique across types),
``object_id``, ``content_type``, ``title``, ``description``, ``content``, ``url``,
``created``, ``modified`` and ``visible_until``, plus fields of its own type. Dates
are Unix timestamps (integers), so both backends can sort and filter on them.

Text fields hold the plain text a visitor reads: a page's content as rendered (no
Markdown or reStructuredText markup), a blog entry's stored HTML as its words
(pydotorg.safehtml.to_text). Together they are capped at ``MAX_TEXT`` characters, so no
single document can exceed what a backend accepts (PostgreSQL's tsvector stops at 1 MB)
and break the batch or rebuild it is part of.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps
from django.db.models import Model, Q, QuerySet

from pydotorg.safehtml import is_web_url, to_text

from .snippets import strip_markers

# visible_until of documents that never expire (year 3000): one numeric filter serves every type.
FOREVER = 32503680000
# Characters of title, description and content together that a document keeps (the start of the text).
MAX_TEXT = 100_000
# A cut looks this far back for a space, so the last indexed word is whole.
_CUT_SLACK = 100

Document = dict[str, Any]


class UnknownContentType(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"Unknown search content type {name!r}; the indexed types are {', '.join(TYPES)}. "
            "Register a new one in pydotorg/search/documents.py."
        )


def timestamp(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def plain(value: str) -> str:
    """Plain text (a title, a job description) with whitespace collapsed and highlight markers removed."""
    return " ".join(strip_markers(value or "").split())


def reader_text(html: str) -> str:
    """The words a reader sees in ``html``. Markers are removed after decoding (``&#xe000;`` is one)."""
    return strip_markers(to_text(html or ""))


def cut(value: str, limit: int) -> str:
    """The first ``limit`` characters of ``value`` at most, ending on a whole word where one ends nearby."""
    if len(value) <= limit:
        return value
    space = value.rfind(" ", max(0, limit - _CUT_SLACK), limit + 1)
    return value[: space if space > 0 else limit].rstrip()


def capped(doc: Document) -> Document:
    """``doc`` with title, description and content sharing ``MAX_TEXT`` characters, in that order."""
    left = MAX_TEXT
    for name in ("title", "description", "content"):
        doc[name] = cut(doc.get(name) or "", left)
        left -= len(doc[name])
    return doc


def safe_url(value: str) -> str:
    """``value`` if it is a site path or an http(s) link with a host, else ``""``.

    Never ``javascript:``, ``//host`` or ``/\\host`` (browsers read a backslash as a slash).
    """
    value = (value or "").strip()
    if any(c in value for c in "\\\x00\r\n\t"):
        return ""
    if value.startswith("/") and not value.startswith("//"):
        return value
    return value if is_web_url(value) else ""


def doc_id(content_type: str, object_id: int) -> str:
    return f"{content_type}-{object_id}"


@dataclass(frozen=True)
class ContentType:
    name: str
    model_label: str
    indexable_filter: Callable[[], Q]
    fields: Callable[[Any], Document]  # title, description and content as plain text, and the type's own
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
            "url": safe_url(obj.get_absolute_url()),
            "created": timestamp(obj.created),
            "modified": timestamp(obj.updated),
            "visible_until": FOREVER,
        }
        return capped({**common, **self.fields(obj)})


def _page(page: Any) -> Document:
    return {
        "title": plain(page.title),
        "description": plain(page.description),
        "content": reader_text(page.html),  # rendered: what the visitor reads, not the source markup
        "path": page.path,
        "keywords": page.keywords,
    }


def _blog(entry: Any) -> Document:
    return {
        "title": plain(entry.title),
        "description": reader_text(entry.summary),
        "content": reader_text(entry.content),
        "feed": entry.feed.name,
        "feed_id": entry.feed_id,
        "published": timestamp(entry.pub_date),
    }


def _job(job: Any) -> Document:
    return {
        "title": plain(job.job_title),
        "description": plain(job.description),
        "content": plain(job.requirements),
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
        "title": plain(event.title),
        "description": plain(event.description),
        "content": "",
        "venue": event.venue,
        "location": event.location,
        "starts": timestamp(event.starts_at),
        "ends": timestamp(event.ends_at),
        "all_day": event.all_day,
    }


def _job_visible() -> Q:
    return apps.get_model("jobs.Job").visible_filter()


TYPES: dict[str, ContentType] = {
    t.name: t
    for t in (
        ContentType("page", "pages.Page", lambda: Q(is_published=True), _page),
        ContentType("blog", "blogs.BlogEntry", Q, _blog, related=("feed",)),
        ContentType("job", "jobs.Job", _job_visible, _job, related=("category",), prefetch=("job_types",)),
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
