"""The embedded default backend: documents in a database table.

PostgreSQL: a weighted ``tsvector`` (title > description > content) with a GIN index,
``websearch_to_tsquery`` for what users type, ``ts_rank`` ordering and ``ts_headline``
snippets. SQLite: every term must appear in the title, description or content.

A rebuild writes a new generation of rows beside the live one and flips the live
flag in one transaction; searches read only the live generation, so they never see
a partial index, and a failed rebuild just deletes its own rows.
"""

from __future__ import annotations

import logging
import time

from asgiref.sync import sync_to_async
from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, TextField, Value
from django.db.models.functions import Concat

from ..models import IndexGeneration, SearchDocument
from ..snippets import make_snippet, marked_to_html, strip_markers, terms_of
from .base import MARK_END, MARK_START, BaseSearchBackend, Document, Hit, Rebuild, SearchResults

logger = logging.getLogger("pydotorg.search")

CONFIG = "english"
COLUMNS = ("title", "description", "content", "url", "created", "modified", "visible_until")


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def vector() -> SearchVector:
    return (
        SearchVector("title", weight="A", config=CONFIG)
        + SearchVector("description", weight="B", config=CONFIG)
        + SearchVector("content", weight="C", config=CONFIG)
    )


def live_generation() -> IndexGeneration:
    live = IndexGeneration.objects.filter(is_live=True).first()
    if live is not None:
        return live
    try:
        with transaction.atomic():
            return IndexGeneration.objects.create(is_live=True)
    except IntegrityError:  # another process created it first
        return IndexGeneration.objects.get(is_live=True)


def rows(generation: IndexGeneration, docs: list[Document]) -> list[SearchDocument]:
    return [
        SearchDocument(
            generation=generation,
            content_type=doc["content_type"],
            object_id=doc["object_id"],
            data=doc,
            **{
                name: doc.get(name) or ("" if name in ("title", "description", "content", "url") else None)
                for name in COLUMNS
                if name != "visible_until"
            },
            visible_until=doc["visible_until"],
        )
        for doc in docs
    ]


def write(generation: IndexGeneration, docs: list[Document], upsert: bool) -> None:
    objs = rows(generation, docs)
    with transaction.atomic():
        if upsert:
            SearchDocument.objects.bulk_create(
                objs,
                update_conflicts=True,
                unique_fields=["generation", "content_type", "object_id"],
                update_fields=[*COLUMNS, "data"],
            )
        else:
            SearchDocument.objects.bulk_create(objs)
        if is_postgresql() and objs:
            keys = Q()
            for content_type in {o.content_type for o in objs}:
                ids = [o.object_id for o in objs if o.content_type == content_type]
                keys |= Q(content_type=content_type, object_id__in=ids)
            SearchDocument.objects.filter(keys, generation=generation).update(search_vector=vector())


def _apply(content_type: str, upserts: list[Document], deletes: list[int]) -> None:
    generation = live_generation()
    with transaction.atomic():
        if deletes:
            SearchDocument.objects.filter(
                generation=generation, content_type=content_type, object_id__in=deletes
            ).delete()
        if upserts:
            write(generation, upserts, upsert=True)


def _search(query: str, content_type: str | None, limit: int, offset: int) -> SearchResults:
    # One join on the live flag: a swap between two queries cannot mix generations in one result list.
    qs = SearchDocument.objects.filter(generation__is_live=True, visible_until__gt=int(time.time()))
    if content_type:
        qs = qs.filter(content_type=content_type)
    if is_postgresql():
        return _search_postgresql(qs, query, limit, offset)
    return _search_plain(qs, query, limit, offset)


def _search_postgresql(qs, query: str, limit: int, offset: int) -> SearchResults:
    tsquery = SearchQuery(query, search_type="websearch", config=CONFIG)
    qs = qs.filter(search_vector=tsquery)
    total = qs.count()
    found = (
        qs.annotate(rank=SearchRank(F("search_vector"), tsquery))
        .order_by("-rank", "-modified", "pk")
        .values("content_type", "object_id", "title", "url", "rank")[offset : offset + limit]
    )
    found = list(found)
    snippets = _headlines(tsquery, [(r["content_type"], r["object_id"]) for r in found], qs)
    hits = [
        Hit(
            r["content_type"],
            r["object_id"],
            r["title"],
            r["url"],
            snippets.get((r["content_type"], r["object_id"]), ""),
        )
        for r in found
    ]
    return SearchResults(query=query, total=total, hits=hits)


def _headlines(tsquery: SearchQuery, keys: list[tuple[str, int]], qs) -> dict[tuple[str, int], str]:
    """ts_headline for the shown hits only (it re-parses the text, so not for every match)."""
    if not keys:
        return {}
    match = Q()
    for content_type, object_id in keys:
        match |= Q(content_type=content_type, object_id=object_id)
    headline = SearchHeadline(
        Concat("description", Value(" "), "content", output_field=TextField()),
        tsquery,
        config=CONFIG,
        start_sel=MARK_START,
        stop_sel=MARK_END,
        max_words=35,
        min_words=15,
        max_fragments=2,
        fragment_delimiter=" … ",
    )
    result = {}
    for row in qs.filter(match).annotate(headline=headline).values("content_type", "object_id", "headline"):
        result[(row["content_type"], row["object_id"])] = marked_to_html(row["headline"].strip())
    return result


def _search_plain(qs, query: str, limit: int, offset: int) -> SearchResults:
    terms = terms_of(query)
    if not terms:
        return SearchResults(query=query, total=0)
    for term in terms:
        qs = qs.filter(Q(title__icontains=term) | Q(description__icontains=term) | Q(content__icontains=term))
    total = qs.count()
    found = qs.order_by("-modified", "pk").values(
        "content_type", "object_id", "title", "url", "description", "content"
    )[offset : offset + limit]
    hits = [
        Hit(
            r["content_type"],
            r["object_id"],
            r["title"],
            r["url"],
            make_snippet(strip_markers(f"{r['description']} {r['content']}"), terms),
        )
        for r in found
    ]
    return SearchResults(query=query, total=total, hits=hits)


class DatabaseRebuild(Rebuild):
    def __init__(self, generation: IndexGeneration) -> None:
        self.generation = generation
        self.added = 0

    async def add(self, documents: list[Document]) -> None:
        await sync_to_async(write)(self.generation, documents, False)
        self.added += len(documents)

    async def commit(self) -> None:
        await sync_to_async(self._swap)()

    def _swap(self) -> None:
        with transaction.atomic():
            old = list(IndexGeneration.objects.select_for_update().filter(is_live=True))
            IndexGeneration.objects.filter(pk__in=[g.pk for g in old]).update(is_live=False)
            IndexGeneration.objects.filter(pk=self.generation.pk).update(is_live=True)
        # The old rows are no longer read; dropping them is cleanup, not part of the swap.
        for generation in old:
            SearchDocument.objects.filter(generation=generation).delete()
            generation.delete()
        logger.info("Database search index swapped in generation %s (%d documents)", self.generation.pk, self.added)

    async def discard(self) -> None:
        await sync_to_async(self._discard)()

    def _discard(self) -> None:
        SearchDocument.objects.filter(generation=self.generation).delete()
        IndexGeneration.objects.filter(pk=self.generation.pk, is_live=False).delete()


class SearchBackend(BaseSearchBackend):
    name = "database"

    async def apply(self, content_type: str, upserts: list[Document], deletes: list[int]) -> None:
        await sync_to_async(_apply)(content_type, upserts, deletes)

    async def search(
        self, query: str, content_type: str | None = None, limit: int = 20, offset: int = 0
    ) -> SearchResults:
        return await sync_to_async(_search)(query, content_type, limit, offset)

    async def start_rebuild(self) -> Rebuild:
        generation = await IndexGeneration.objects.acreate(is_live=False)
        return DatabaseRebuild(generation)

    async def count(self) -> int:
        generation = await sync_to_async(live_generation)()
        return await SearchDocument.objects.filter(generation=generation).acount()
