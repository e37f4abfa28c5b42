"""The embedded default backend: documents in a database table.

PostgreSQL: a weighted ``tsvector`` (title > description > content) with a GIN index,
``websearch_to_tsquery`` for what users type, ``ts_rank`` ordering and ``ts_headline``
snippets. SQLite: every term must appear in the title, description or content.

A rebuild writes a new generation of rows beside the live one and flips the live
flag in one transaction; searches read only the live generation, so they never see
a partial index, and a failed rebuild just deletes its own rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import F, Q, TextField, Value
from django.db.models.functions import Concat, Left, Length, Replace
from django.utils import timezone

from ..documents import extra_text
from ..models import IndexGeneration, SearchDocument
from ..snippets import HIGHLIGHT_CHARS, crop, make_snippet, strip_markers, terms_of
from .base import (
    LESS_THAN,
    MARK_END,
    MARK_START,
    STALE_REBUILD_SECONDS,
    BaseSearchBackend,
    Document,
    Hit,
    Rebuild,
    SearchResults,
)

logger = logging.getLogger("pydotorg.search")

CONFIG = "english"
COLUMNS = ("title", "description", "content", "url", "created", "modified", "visible_until")


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def live_generation() -> IndexGeneration:
    live = IndexGeneration.objects.filter(is_live=True).first()
    if live is not None:
        return live
    try:
        with transaction.atomic():
            return IndexGeneration.objects.create(is_live=True)
    except IntegrityError:  # another process created it first
        return IndexGeneration.objects.get(is_live=True)


def values(doc: Document) -> dict:
    return {
        "content_type": doc["content_type"],
        "object_id": doc["object_id"],
        "title": doc.get("title") or "",
        "description": doc.get("description") or "",
        "extra": extra_text(doc),
        "content": doc.get("content") or "",
        "url": doc.get("url") or "",
        "created": doc.get("created"),
        "modified": doc.get("modified"),
        "visible_until": doc["visible_until"],
    }


def write(generation: IndexGeneration, docs: list[Document], upsert: bool) -> None:
    if not docs:
        return
    if is_postgresql():
        return _write_postgresql(generation, docs, upsert)
    objs = [SearchDocument(generation=generation, **values(doc)) for doc in docs]
    if upsert:
        SearchDocument.objects.bulk_create(
            objs,
            update_conflicts=True,
            unique_fields=["generation", "content_type", "object_id"],
            update_fields=[*COLUMNS, "extra"],
        )
    else:
        SearchDocument.objects.bulk_create(objs)


def _write_postgresql(generation: IndexGeneration, docs: list[Document], upsert: bool) -> None:
    """One INSERT ... SELECT FROM unnest(arrays) computing the tsvector in the same statement.

    A row is written once (an UPDATE for the vector would write every row twice), and one
    array parameter per column keeps the statement small however many rows it carries.
    """
    rows = [values(doc) for doc in docs]
    names = list(rows[0])
    types = {"object_id": "bigint", "created": "bigint", "modified": "bigint", "visible_until": "bigint"}
    table = SearchDocument._meta.db_table
    less_than = f"'<', chr({ord(LESS_THAN)})"  # else the parser drops "<...>" as a tag, words and all
    vector_sql = (
        f"setweight(to_tsvector('{CONFIG}', translate(v.title, {less_than})), 'A') || "
        f"setweight(to_tsvector('{CONFIG}', translate(v.description || ' ' || v.extra, {less_than})), 'B') || "
        f"setweight(to_tsvector('{CONFIG}', translate(v.content, {less_than})), 'C')"
    )
    sql = (
        f"INSERT INTO {table} (generation_id, {', '.join(names)}, search_vector) "
        f"SELECT %s, {', '.join(f'v.{n}' for n in names)}, {vector_sql} "
        f"FROM unnest({', '.join(f'%s::{types.get(n, "text")}[]' for n in names)}) AS v({', '.join(names)})"
    )
    if upsert:
        updated = [*(n for n in names if n not in ("content_type", "object_id")), "search_vector"]
        sql += " ON CONFLICT (generation_id, content_type, object_id) DO UPDATE SET " + ", ".join(
            f"{n} = EXCLUDED.{n}" for n in updated
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [generation.pk, *([row[n] for row in rows] for n in names)])


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
    hits = [_hit(r, snippets.get((r["content_type"], r["object_id"]), "")) for r in found]
    return SearchResults(query=query, total=total, hits=hits)


def _hit(row: dict, snippet: str) -> Hit:
    return Hit(row["content_type"], row["object_id"], row["title"], row["url"], snippet)


def _headlines(tsquery: SearchQuery, keys: list[tuple[str, int]], qs) -> dict[tuple[str, int], str]:
    """Snippets for the shown hits only (ts_headline re-parses the text, so not for every match).

    ts_headline marks every match (HighlightAll) in the first HIGHLIGHT_CHARS characters,
    which keeps every word and punctuation mark as written and bounds its cost whatever
    the document's size; snippets.crop then picks the words around the first match.
    """
    if not keys:
        return {}
    match = Q()
    for content_type, object_id in keys:
        match |= Q(content_type=content_type, object_id=object_id)
    text = Concat("description", Value(" "), "content", output_field=TextField())
    headline = SearchHeadline(
        Replace(Left(text, HIGHLIGHT_CHARS), Value("<"), Value(LESS_THAN)),  # as in the index: see LESS_THAN
        tsquery,
        config=CONFIG,
        start_sel=MARK_START,
        stop_sel=MARK_END,
        highlight_all=True,
    )
    rows = qs.filter(match).annotate(headline=headline, length=Length(text))
    return {
        (row["content_type"], row["object_id"]): crop(row["headline"], more_after=row["length"] > HIGHLIGHT_CHARS)
        for row in rows.values("content_type", "object_id", "headline", "length")
    }


def _search_plain(qs, query: str, limit: int, offset: int) -> SearchResults:
    terms = terms_of(query)
    if not terms:
        return SearchResults(query=query, total=0)
    for term in terms:
        qs = qs.filter(
            Q(title__icontains=term)
            | Q(description__icontains=term)
            | Q(extra__icontains=term)
            | Q(content__icontains=term)
        )
    total = qs.count()
    found = qs.order_by("-modified", "pk").values(
        "content_type", "object_id", "title", "url", "description", "content"
    )[offset : offset + limit]
    hits = [_hit(r, make_snippet(strip_markers(f"{r['description']} {r['content']}"), terms)) for r in found]
    return SearchResults(query=query, total=total, hits=hits)


def _write_on_own_connection(generation: IndexGeneration, docs: list[Document]) -> None:
    write(generation, docs, False)


def _close_connections() -> None:
    connections.close_all()


class DatabaseRebuild(Rebuild):
    """Rows of a new generation, written by a few threads with connections of their own.

    PostgreSQL spends most of a rebuild in ``to_tsvector``; two writers use two server
    processes, and reading the next chunk overlaps with writing the last. At most
    ``WRITERS`` batches are in flight, so memory stays flat. Inside a transaction the
    rows are written on the caller's connection instead (other connections could not
    see its uncommitted generation).
    """

    WRITERS = 2

    def __init__(self, generation: IndexGeneration, parallel: bool) -> None:
        self.generation = generation
        self.added = 0
        self.executors = [ThreadPoolExecutor(1, thread_name_prefix="search-rebuild") for _ in range(self.WRITERS)]
        self.executors = self.executors if parallel else []
        self.in_flight: deque[asyncio.Future] = deque()
        self.turn = 0

    async def add(self, documents: list[Document]) -> None:
        if not self.executors:
            await sync_to_async(write)(self.generation, documents, False)
        else:
            executor = self.executors[self.turn % len(self.executors)]
            self.turn += 1
            loop = asyncio.get_running_loop()
            self.in_flight.append(loop.run_in_executor(executor, _write_on_own_connection, self.generation, documents))
            while len(self.in_flight) >= len(self.executors):
                await self.in_flight.popleft()
        self.added += len(documents)

    async def _finish_writers(self) -> None:
        try:
            while self.in_flight:
                await self.in_flight.popleft()
        finally:
            loop = asyncio.get_running_loop()
            for executor in self.executors:
                await loop.run_in_executor(executor, _close_connections)
                executor.shutdown()
            self.executors = []

    async def commit(self) -> None:
        try:
            await self._finish_writers()
            await sync_to_async(self._swap)()
        except BaseException:
            await sync_to_async(self._discard)()
            raise

    def _swap(self) -> None:
        with transaction.atomic():
            old = list(IndexGeneration.objects.select_for_update().filter(is_live=True))
            IndexGeneration.objects.filter(pk__in=[g.pk for g in old]).update(is_live=False)
            IndexGeneration.objects.filter(pk=self.generation.pk).update(is_live=True)
        # The old rows are no longer read; dropping them is cleanup, not part of the swap (a
        # failure here leaves them for the next rebuild to remove, and the new index serving).
        try:
            for generation in old:
                SearchDocument.objects.filter(generation=generation).delete()
                generation.delete()
        except Exception:
            logger.exception("Could not delete the replaced search generation(s); the next rebuild will")
        logger.info("Database search index swapped in generation %s (%d documents)", self.generation.pk, self.added)

    async def discard(self) -> None:
        try:
            await self._finish_writers()
        except Exception:  # the rebuild's own error is the one to report
            logger.exception("A rebuild writer failed while discarding generation %s", self.generation.pk)
        await sync_to_async(self._discard)()

    def _discard(self) -> None:
        if IndexGeneration.objects.filter(pk=self.generation.pk, is_live=False).exists():  # never the live one
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
        stale = timezone.now() - timedelta(seconds=STALE_REBUILD_SECONDS)
        await IndexGeneration.objects.filter(is_live=False, created__lt=stale).adelete()
        generation = await IndexGeneration.objects.acreate(is_live=False)
        in_transaction = await sync_to_async(lambda: connection.in_atomic_block)()
        return DatabaseRebuild(generation, parallel=not in_transaction)
