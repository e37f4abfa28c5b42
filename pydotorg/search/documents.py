"""What a search document is, and the registry of the content types each app declares.

Each content app declares its type in its own ``search.py`` (a :class:`DocumentType` subclass,
:func:`register`-ed); the search app imports those modules when it is ready and names none of them.

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

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db.models import Model, Q, QuerySet
from django.dispatch import Signal

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
            "A new one is declared in its app's search.py (see pydotorg.search.documents.DocumentType)."
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
class Related:
    """Text of another model that a document shows: how to find the documents that show one of its objects.

    ``path`` is the lookup from the indexed model to the related one (``"category"``, ``"job_types"``,
    ``"feed"``); ``fields`` are the related model's fields whose text the document shows, or None when
    any save of the related object may change it. A save that changes none of ``fields`` re-indexes nothing.
    """

    path: str
    fields: tuple[str, ...] | None = None


class DocumentType:
    """One content type's search document, declared in its app's ``search.py`` and :func:`register`-ed.

    Subclasses set ``name`` (the type in documents, job keys and ``?type=``), ``label`` (shown on the
    search page), ``model`` and :meth:`fields`; and where they apply:

    - ``indexable_filter()``: the Q of the objects that belong in the index (default: all);
    - ``select_related``/``prefetch_related``: what :meth:`fields` reads of other tables;
    - ``related``: ``{RelatedModel: Related(path, fields)}`` (or ``{RelatedModel: "path"}``), the other
      models whose text the document shows; saving or deleting one of their objects, or changing a
      many-to-many ``path``, re-indexes the documents that show it (pydotorg/search/related.py).
      Override :meth:`related_ids` for affected documents that a lookup path cannot find;
    - ``changed_signals``: signals the app sends after bulk writes that send no model signals, with
      ``ids`` (primary keys) and ``using`` (database alias, its transaction open);
    - ``key_text_fields``/``text_fields``: type-specific fields worth matching (the database backend
      searches all of them as one column weighted like the description; Meilisearch ranks the key
      ones right after the description and the others after the content);
    - ``filterable``/``sortable``: type-specific fields Meilisearch may filter or sort on.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    model: ClassVar[type[Model]]
    select_related: ClassVar[tuple[str, ...]] = ()
    prefetch_related: ClassVar[tuple[str, ...]] = ()
    related: ClassVar[Mapping[type[Model], Related | str]] = {}
    changed_signals: ClassVar[tuple[Signal, ...]] = ()
    key_text_fields: ClassVar[tuple[str, ...]] = ()
    text_fields: ClassVar[tuple[str, ...]] = ()
    filterable: ClassVar[tuple[str, ...]] = ()
    sortable: ClassVar[tuple[str, ...]] = ()

    def indexable_filter(self) -> Q:
        return Q()

    def fields(self, obj: Any) -> Document:
        """Title, description and content as plain text, and the type's own fields."""
        raise NotImplementedError(f"{type(self).__name__} must define fields(obj).")

    def related_links(self) -> dict[type[Model], Related]:
        return {model: Related(rel) if isinstance(rel, str) else rel for model, rel in self.related.items()}

    def related_ids(self, model: type[Model], pk: Any, using: str | None = None) -> list[int]:
        """Primary keys of the objects (indexable or not) whose documents show ``model``'s object ``pk``."""
        path = self.related_links()[model].path
        return list(self.model._default_manager.using(using).filter(**{path: pk}).values_list("pk", flat=True))

    def indexable(self) -> QuerySet:
        """The objects that belong in the index (evaluated now: job expiry depends on the time)."""
        qs = self.model._default_manager.filter(self.indexable_filter())
        if self.select_related:
            qs = qs.select_related(*self.select_related)
        if self.prefetch_related:
            qs = qs.prefetch_related(*self.prefetch_related)
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


NAME = re.compile(r"[a-z0-9_]{1,20}")  # IndexState.content_type holds 20 characters
# The declared types by name, in the order their apps are installed (filled at start-up by
# SearchConfig.ready(), which imports every app's search.py).
TYPES: dict[str, DocumentType] = {}


def register[T: type[DocumentType]](cls: T) -> T:
    """Class decorator of an app's ``search.py``: index ``cls.model`` with this declaration.

    Raises ImproperlyConfigured when a name or a model is declared twice, or a declaration lacks one.
    """
    for attribute in ("name", "label", "model"):
        if not hasattr(cls, attribute):
            raise ImproperlyConfigured(f"Search document {cls.__qualname__} has no {attribute!r}; declare one.")
    if not NAME.fullmatch(cls.name):
        raise ImproperlyConfigured(
            f"Search document {cls.__qualname__}: name {cls.name!r} must be 1 to 20 lowercase letters, digits or _."
        )
    for other in TYPES.values():
        if other.name == cls.name or other.model is cls.model:
            raise ImproperlyConfigured(
                f"Search document {cls.__qualname__} declares {cls.name!r} for {cls.model._meta.label}, "
                f"which {type(other).__qualname__} already declares; each model has one search document."
            )
    spec = cls()
    for model, link in spec.related_links().items():
        _check_related(spec, model, link)
    TYPES[cls.name] = spec
    return cls


def _check_related(spec: DocumentType, model: type[Model], link: Related) -> None:
    """ImproperlyConfigured unless ``link.path`` leads from the indexed model to ``model`` and its fields exist."""
    where = f"Search document {type(spec).__qualname__}: related {model.__name__}"
    current: type[Model] = spec.model
    for hop in link.path.split("__"):
        try:
            field = current._meta.get_field(hop)
        except FieldDoesNotExist:
            raise ImproperlyConfigured(
                f"{where}: {current._meta.label} has no field {hop!r} (path {link.path!r}); "
                f"the path is the lookup from {spec.model._meta.label} to {model._meta.label}, e.g. 'category'."
            ) from None
        if field.related_model is None:
            raise ImproperlyConfigured(f"{where}: {hop!r} of {current._meta.label} is not a relation.")
        current = field.related_model
    if current is not model:
        raise ImproperlyConfigured(
            f"{where}: path {link.path!r} leads to {current._meta.label}, not {model._meta.label}."
        )
    for name in link.fields or ():
        try:
            model._meta.get_field(name)
        except FieldDoesNotExist:
            raise ImproperlyConfigured(f"{where}: {model._meta.label} has no field {name!r} to show.") from None


def extra_text(doc: Document) -> str:
    """The type-specific text the database backend matches: ``key_text_fields`` and ``text_fields``."""
    spec = TYPES.get(doc.get("content_type"))
    names = (*spec.key_text_fields, *spec.text_fields) if spec else ()
    values = (doc.get(name) for name in names)
    return " ".join(" ".join(v) if isinstance(v, list) else str(v) for v in values if v)


def get_type(name: str) -> DocumentType:
    try:
        return TYPES[name]
    except (KeyError, TypeError):
        raise UnknownContentType(name) from None


def type_of_model(model: type[Model]) -> DocumentType | None:
    return next((t for t in TYPES.values() if t.model is model), None)


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
