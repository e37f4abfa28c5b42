"""The Meilisearch backend through the real SDK, over a real socket.

Against the stand-in (tests/search/fake_meilisearch/) by default, or a real Meilisearch when
MEILISEARCH_URL is set; each test works on index names of its own.
"""

from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync
from meilisearch_python_sdk import AsyncClient
from meilisearch_python_sdk.errors import MeilisearchCommunicationError
from saq import Queue

from pydotorg.pages.models import Page
from pydotorg.search import documents, rebuild
from pydotorg.search.backends.meilisearch import MeilisearchTaskFailed
from pydotorg.search.tasks import index_content
from tasks_app import conf
from tests.redis_server import free_port

from .conftest import run_worker

pytestmark = [pytest.mark.meilisearch, pytest.mark.django_db]

index = async_to_sync(index_content)


def api(client, q: str, **params) -> dict:
    response = client.get("/api/search/", {"q": q, **params})
    assert response.status_code == 200, response.content
    return response.json()


async def _indexes(settings) -> tuple[list[str], dict]:
    async with AsyncClient(settings.MEILISEARCH_URL, settings.MEILISEARCH_API_KEY) as client:
        uids = [i.uid for i in await client.get_indexes(limit=1000) or []]
        live = await client.index(settings.MEILISEARCH_INDEX).get_settings()
    return [u for u in uids if u.startswith(settings.MEILISEARCH_INDEX)], live


def indexes(settings):
    return async_to_sync(_indexes)(settings)


def closed_port() -> int:
    return free_port()  # never handed to a server of this run later: it stays closed


def test_index_content_upserts_searches_and_deletes(meili, client, make_page, make_job):
    page = make_page(title="Descriptor guide", content="Descriptors power properties and methods.")
    job = make_job(job_title="Descriptor wrangler", description="Descriptors, daily.")
    index({}, "page", page.pk)
    index({}, "page", page.pk)  # idempotent
    index({}, "job", job.pk)

    found = api(client, "descriptors")
    assert found["total"] == 2
    by_type = {h["type"]: h for h in found["hits"]}
    assert by_type["page"]["id"] == page.pk and by_type["page"]["url"] == page.get_absolute_url()
    assert "<mark>Descriptors</mark>" in by_type["page"]["snippet"]
    assert [h["type"] for h in api(client, "descriptors", type="job")["hits"]] == ["job"]  # filterable

    Page.objects.filter(pk=page.pk).update(is_published=False)
    assert index({}, "page", page.pk)["deleted"] == [page.pk]
    assert [h["type"] for h in api(client, "descriptors")["hits"]] == ["job"]


def test_rebuild_swaps_in_a_new_index_with_its_settings(meili, settings, client, make_page):
    for n in range(5):
        make_page(title=f"Typing tutorial {n}", content="Type hints and protocols.")
    result = async_to_sync(rebuild.rebuild_index)(chunk_size=2)
    assert result["documents"]["page"] == 5
    assert api(client, "protocols")["total"] == 5
    names, live = indexes(settings)
    assert names == [settings.MEILISEARCH_INDEX]  # the temporary index was swapped in and the old one deleted
    assert "content_type" in live.filterable_attributes and "modified" in live.sortable_attributes
    assert live.searchable_attributes[0] == "title"


async def _create(settings, uid: str) -> None:
    async with AsyncClient(settings.MEILISEARCH_URL, settings.MEILISEARCH_API_KEY) as client:
        await client.create_index(uid, primary_key="id")


def test_a_rebuild_removes_indexes_left_by_a_crashed_rebuild_but_not_a_running_one(meili, settings, make_page):
    make_page()
    crashed = f"{settings.MEILISEARCH_INDEX}_rebuild_20200101000000_deadbeef"
    running = f"{settings.MEILISEARCH_INDEX}_rebuild_{time.strftime('%Y%m%d%H%M%S', time.gmtime())}_cafef00d"
    async_to_sync(_create)(settings, crashed)
    async_to_sync(_create)(settings, running)
    async_to_sync(rebuild.rebuild_index)()
    assert sorted(indexes(settings)[0]) == sorted([settings.MEILISEARCH_INDEX, running])


def test_a_rebuild_failing_midway_leaves_the_old_index_serving(meili, settings, client, make_page, monkeypatch):
    for n in range(4):
        make_page(title=f"Packaging guide {n}", content="Wheels and sdists.")
    async_to_sync(rebuild.rebuild_index)()
    Page.objects.update(title="Renamed by the failed rebuild")

    real = documents.chunk_after

    def with_a_bad_document(content_type, after, size):
        docs, last = real(content_type, after, size)
        if content_type == "page" and after > 0 and docs:
            docs[0] = {**docs[0], "id": "page 1 has a space"}  # Meilisearch rejects this id: the task fails
        return docs, last

    monkeypatch.setattr(documents, "chunk_after", with_a_bad_document)
    with pytest.raises(MeilisearchTaskFailed, match="invalid_document_id"):
        async_to_sync(rebuild.rebuild_index)(chunk_size=2)

    found = api(client, "wheels")
    assert found["total"] == 4
    assert {h["title"] for h in found["hits"]} == {f"Packaging guide {n}" for n in range(4)}
    assert indexes(settings)[0] == [settings.MEILISEARCH_INDEX]  # the half-built index was deleted


def test_meilisearch_down_fails_the_job_and_shows_a_friendly_page(meili, settings, client, make_page):
    page = make_page(title="Offline", content="unreachable words")
    settings.MEILISEARCH_URL = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(MeilisearchCommunicationError):
        index({}, "page", page.pk)  # not swallowed: the worker retries it

    response = client.get("/search/", {"q": "unreachable"})
    assert response.status_code == 503
    assert "Search is temporarily unavailable" in response.content.decode()
    api_response = client.get("/api/search/", {"q": "unreachable"})
    assert api_response.status_code == 503
    assert api_response.json() == {"error": "Search is temporarily unavailable. Please try again in a few minutes."}


async def _job(key: str):
    queue = Queue.from_url(conf.queue_config("default").url)
    try:
        return await queue.job(key)
    finally:
        await queue.disconnect()


@pytest.mark.django_db(transaction=True)
def test_an_update_made_while_meilisearch_is_down_is_retried_and_delivered(
    meili, settings, client, make_page, clean_queue
):
    up = settings.MEILISEARCH_URL
    settings.MEILISEARCH_URL = f"http://127.0.0.1:{closed_port()}"
    page = make_page(title="Resilience", content="delivered after the outage")

    run_worker("--max-jobs", "1")  # one attempt, which fails
    job = async_to_sync(_job)(f"search:page:{page.pk}:0")
    assert job.attempts == 1
    assert job.status == "queued"  # scheduled again, with backoff
    assert "MeilisearchCommunicationError" in (job.error or "")

    settings.MEILISEARCH_URL = up
    run_worker()  # the retry, due within a few seconds, runs and succeeds
    assert async_to_sync(_job)(f"search:page:{page.pk}:0").status == "complete"
    assert api(client, "outage")["total"] == 1
