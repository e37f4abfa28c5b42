"""Meilisearch through meilisearch-python-sdk's ``AsyncClient`` (used when MEILISEARCH_URL is set).

All content types share one index (``MEILISEARCH_INDEX``, primary key ``id`` =
``"<type>-<pk>"``), so one query ranks pages, blog entries, jobs and events together,
and one swap replaces everything. Every write waits for its Meilisearch task and
fails if the task failed, so a job that returns has really changed the index.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from typing import Any

from httpx2 import HTTPError
from meilisearch_python_sdk import AsyncClient
from meilisearch_python_sdk.errors import MeilisearchApiError, MeilisearchError
from meilisearch_python_sdk.models.settings import MeilisearchSettings

from .. import conf, documents
from ..documents import doc_id
from ..snippets import marked_to_html
from .base import (
    MARK_END,
    MARK_START,
    STALE_REBUILD_SECONDS,
    BaseSearchBackend,
    Document,
    Hit,
    Rebuild,
    RebuildFailed,
    SearchResults,
    SearchUnavailable,
)

logger = logging.getLogger("pydotorg.search")


def _each(names: object) -> list[str]:
    return list(dict.fromkeys(names))  # in order, once each


def index_settings() -> MeilisearchSettings:
    """The index's settings: the common fields, and those the declared document types add.

    Matches rank by attribute: title, description, the types' key text (a page's keywords),
    content, then the types' other text, in the order their apps are installed.
    """
    types = documents.TYPES.values()
    return MeilisearchSettings(
        searchable_attributes=_each(
            [
                "title",
                "description",
                *(name for t in types for name in t.key_text_fields),
                "content",
                *(name for t in types for name in t.text_fields),
            ]
        ),
        filterable_attributes=_each(
            ["content_type", "visible_until", "object_id", *(name for t in types for name in t.filterable)]
        ),
        sortable_attributes=_each(["created", "modified", *(name for t in types for name in t.sortable)]),
    )


RETRIEVE = ["id", "object_id", "content_type", "title", "url", "description", "content"]
# Tasks a rebuild may leave in flight before waiting for the oldest (bounds memory and
# surfaces a failed batch early).
MAX_IN_FLIGHT = 4
REBUILD_PREFIX = "_rebuild_"


def index_uid() -> str:
    return conf.meilisearch_index()


def client() -> AsyncClient:
    config = conf.search_settings()
    return AsyncClient(config.meilisearch_url, config.meilisearch_api_key, timeout=config.meilisearch_timeout)


def task_timeout_ms() -> int:
    return int(conf.meilisearch_task_timeout() * 1000)


class MeilisearchTaskFailed(RuntimeError):
    pass


async def wait(meili: AsyncClient, task_uid: int, what: str) -> None:
    """Wait for a task; a failed (or canceled) task raises, naming Meilisearch's error."""
    result = await meili.wait_for_task(task_uid, timeout_in_ms=task_timeout_ms())
    if result.status != "succeeded":
        error = result.error or {}
        raise MeilisearchTaskFailed(
            f"Meilisearch task {task_uid} ({what}) {result.status}: {error.get('code', '')} {error.get('message', '')}"
        )


def is_not_found(exc: MeilisearchApiError) -> bool:
    return "index_not_found" in (exc.code or "")


async def create_index(meili: AsyncClient, uid: str) -> None:
    """Create ``uid`` and apply the settings, waiting for both (settings before any document)."""
    await meili.create_index(uid, primary_key="id", timeout_in_ms=task_timeout_ms())
    task = await meili.index(uid).update_settings(index_settings())
    await wait(meili, task.task_uid, f"settings of {uid}")


async def ensure_index(meili: AsyncClient, uid: str) -> None:
    try:
        await meili.get_index(uid)
    except MeilisearchApiError as exc:
        if not is_not_found(exc):
            raise
        await create_index(meili, uid)


async def drop_stale_rebuilds(meili: AsyncClient) -> None:
    """Delete temporary indexes that crashed rebuilds left behind (named with their UTC start time)."""
    prefix = f"{index_uid()}{REBUILD_PREFIX}"
    cutoff = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() - STALE_REBUILD_SECONDS))
    for index in await meili.get_indexes(limit=1000) or []:
        started = index.uid[len(prefix) :].split("_")[0]
        if index.uid.startswith(prefix) and started < cutoff:
            logger.warning("Deleting %s, left behind by a rebuild that did not finish", index.uid)
            await wait(meili, (await index.delete()).task_uid, f"delete stale {index.uid}")


class MeilisearchRebuild(Rebuild):
    def __init__(self, meili: AsyncClient, uid: str) -> None:
        self.meili = meili
        self.uid = uid
        self.in_flight: deque[int] = deque()
        self.added = 0

    async def add(self, documents: list[Document]) -> None:
        task = await self.meili.index(self.uid).add_documents(documents, primary_key="id")
        self.in_flight.append(task.task_uid)
        self.added += len(documents)
        while len(self.in_flight) > MAX_IN_FLIGHT:
            await wait(self.meili, self.in_flight.popleft(), f"add documents to {self.uid}")

    async def commit(self) -> None:
        try:
            while self.in_flight:
                await wait(self.meili, self.in_flight.popleft(), f"add documents to {self.uid}")
            stats = await self.meili.index(self.uid).get_stats()
            if stats.number_of_documents != self.added:
                raise RebuildFailed(
                    f"{self.uid} holds {stats.number_of_documents} documents, {self.added} were sent; not swapping."
                )
            live = index_uid()
            await ensure_index(self.meili, live)
            task = await self.meili.swap_indexes([(live, self.uid)])
            await wait(self.meili, task.task_uid, f"swap {live} and {self.uid}")
        except BaseException:
            await self.discard()
            raise
        # The swap is done and the new index is serving; the old one now sits under our temporary
        # name. Failing to delete it is logged, not fatal: the next rebuild removes it.
        try:
            task = await self.meili.index(self.uid).delete()
            await wait(self.meili, task.task_uid, f"delete old index {self.uid}")
        except Exception:
            logger.exception("Could not delete the replaced index %s; the next rebuild will", self.uid)
        finally:
            await self.meili.aclose()
        logger.info("Meilisearch index %s swapped in (%d documents)", live, self.added)

    async def discard(self) -> None:
        try:
            task = await self.meili.index(self.uid).delete()
            await wait(self.meili, task.task_uid, f"delete {self.uid}")
        except Exception:  # the rebuild's own error is the one to report
            logger.exception("Could not delete the temporary index %s; a later rebuild removes it", self.uid)
        finally:
            await self.meili.aclose()


class SearchBackend(BaseSearchBackend):
    name = "meilisearch"

    async def apply(self, content_type: str, upserts: list[Document], deletes: list[int]) -> None:
        uid = index_uid()
        async with client() as meili:
            await ensure_index(meili, uid)
            index = meili.index(uid)
            if deletes:
                task = await index.delete_documents([doc_id(content_type, pk) for pk in deletes])
                await wait(meili, task.task_uid, f"delete {content_type} {deletes[:10]}")
            if upserts:
                task = await index.add_documents(upserts, primary_key="id")
                await wait(meili, task.task_uid, f"upsert {content_type} {[d['object_id'] for d in upserts[:10]]}")

    async def search(
        self, query: str, content_type: str | None = None, limit: int = 20, offset: int = 0
    ) -> SearchResults:
        filters = [f"visible_until > {int(time.time())}"]
        if content_type:
            filters.append(f'content_type = "{content_type}"')
        try:
            async with client() as meili:
                found = await meili.index(index_uid()).search(
                    query,
                    offset=offset,
                    limit=limit,
                    filter=filters,
                    attributes_to_retrieve=RETRIEVE,
                    attributes_to_highlight=["title", "description", "content"],
                    attributes_to_crop=["description", "content"],
                    crop_length=30,
                    crop_marker="…",
                    highlight_pre_tag=MARK_START,
                    highlight_post_tag=MARK_END,
                )
        except MeilisearchApiError as exc:
            if is_not_found(exc):  # nothing indexed yet
                return SearchResults(query=query, total=0)
            raise unavailable(exc) from exc
        except (MeilisearchError, HTTPError, OSError) as exc:
            raise unavailable(exc) from exc
        hits = [_hit(raw) for raw in found.hits]
        total = found.estimated_total_hits if found.estimated_total_hits is not None else found.total_hits
        return SearchResults(query=query, total=total or 0, hits=hits)

    async def start_rebuild(self) -> Rebuild:
        meili = client()
        uid = f"{index_uid()}{REBUILD_PREFIX}{time.strftime('%Y%m%d%H%M%S', time.gmtime())}_{uuid.uuid4().hex[:8]}"
        try:
            await drop_stale_rebuilds(meili)
            await create_index(meili, uid)
        except BaseException:
            rebuild = MeilisearchRebuild(meili, uid)
            await rebuild.discard()
            raise
        return MeilisearchRebuild(meili, uid)


def _hit(raw: dict[str, Any]) -> Hit:
    formatted = raw.get("_formatted") or {}
    snippet = next(
        (formatted[f] for f in ("content", "description") if MARK_START in str(formatted.get(f) or "")),
        formatted.get("description") or formatted.get("content") or "",
    )
    return Hit(
        type=raw["content_type"],
        id=int(raw["object_id"]),
        title=raw.get("title", ""),
        url=raw.get("url", ""),
        snippet=marked_to_html(str(snippet)),
    )


def unavailable(exc: BaseException) -> SearchUnavailable:
    return SearchUnavailable(f"Meilisearch at {conf.meilisearch_url()} is unavailable: {exc}")
