"""Zero-downtime rebuilds, on the database backend (the Meilisearch ones are in test_meilisearch.py)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.management import CommandError, call_command
from django.utils import timezone

from pydotorg.pages.models import Page
from pydotorg.search import documents, rebuild
from pydotorg.search.backends.database import SearchBackend as DatabaseBackend
from pydotorg.search.indexer import index_objects
from pydotorg.search.models import IndexGeneration, SearchDocument

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("db_backend")]


def titles(q: str) -> list[str]:
    return sorted(hit.title for hit in async_to_sync(DatabaseBackend().search)(q).hits)


@pytest.fixture
def pages(make_page):
    return [make_page(title=f"Tutorial {n}", content=f"lesson number {n} about generators") for n in range(5)]


def test_rebuild_indexes_everything_and_leaves_one_generation(pages, make_job):
    make_job(job_title="Generators engineer", description="generators all day")
    Page.objects.filter(pk=pages[0].pk).update(is_published=False)  # no signal: only the rebuild sees it
    result = async_to_sync(rebuild.rebuild_index)(chunk_size=2)
    assert result["documents"] == {"page": 4, "blog": 0, "job": 1, "event": 0}
    assert titles("generators") == ["Generators engineer", *[f"Tutorial {n}" for n in range(1, 5)]]
    assert IndexGeneration.objects.filter(is_live=True).count() == 1
    assert IndexGeneration.objects.count() == 1
    assert SearchDocument.objects.count() == 5


def test_a_rebuild_failing_midway_leaves_the_live_index_serving(pages, monkeypatch):
    async_to_sync(rebuild.rebuild_index)()
    before = titles("generators")
    Page.objects.update(title="Renamed")  # what a successful rebuild would show

    calls = {"n": 0}
    real = documents.chunk_after

    def failing(content_type, after, size):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("database went away mid-rebuild")
        return real(content_type, after, size)

    monkeypatch.setattr(documents, "chunk_after", failing)
    with pytest.raises(ConnectionError):
        async_to_sync(rebuild.rebuild_index)(chunk_size=2)
    assert titles("generators") == before  # the old index still serves
    assert IndexGeneration.objects.count() == 1  # the half-built generation was removed
    assert SearchDocument.objects.count() == 5


def test_a_failed_cleanup_after_the_swap_keeps_the_new_index_serving(pages, monkeypatch, caplog):
    async_to_sync(rebuild.rebuild_index)()
    Page.objects.update(title="After the swap")

    def fail(self, *args, **kwargs):
        raise OSError("cannot delete")

    monkeypatch.setattr(IndexGeneration, "delete", fail)
    async_to_sync(rebuild.rebuild_index)()
    assert titles("generators") == ["After the swap"] * 5
    assert "Could not delete the replaced search generation" in caplog.text
    assert IndexGeneration.objects.filter(is_live=True).count() == 1


def test_edits_indexed_while_a_rebuild_runs_survive_the_swap(pages):
    first = pages[0]

    def edit():
        first.title = "Edited mid-rebuild"
        first.save()

    class EditingBackend(DatabaseBackend):
        async def start_rebuild(self):
            building = await super().start_rebuild()
            add = building.add

            async def add_then_edit(docs):
                await add(docs)
                if building.added == 2:  # the rebuild has read the first page; now an editor changes it
                    await sync_to_async(edit)()
                    await index_objects("page", [first.pk])  # its job runs, into the still-live old index

            building.add = add_then_edit
            return building

    result = async_to_sync(rebuild.rebuild_index)(EditingBackend(), chunk_size=2)
    assert result["caught_up"] >= 1
    assert "Edited mid-rebuild" in titles("generators")
    assert "Tutorial 0" not in titles("generators")


def test_a_rebuild_removes_generations_left_by_a_crashed_rebuild_but_not_a_running_one(pages):
    crashed = IndexGeneration.objects.create(is_live=False)
    IndexGeneration.objects.filter(pk=crashed.pk).update(created=timezone.now() - timedelta(hours=3))
    running = IndexGeneration.objects.create(is_live=False)
    async_to_sync(rebuild.rebuild_index)()
    assert not IndexGeneration.objects.filter(pk=crashed.pk).exists()
    assert IndexGeneration.objects.filter(pk=running.pk).exists()


def test_rebuild_command_shows_progress_and_a_summary(pages):
    out = StringIO()
    call_command("rebuild_search_index", "--chunk-size", "2", stdout=out)
    text = out.getvalue()
    assert "Rebuilding the search index (database backend)" in text
    assert "page   [" in text and "5/5 (100%)" in text
    assert "Indexed 5 documents" in text


def test_rebuild_command_failure_says_the_live_index_is_intact(pages, monkeypatch):
    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(documents, "chunk_after", broken)
    with pytest.raises(CommandError, match=r"live index was left as it was\. RuntimeError: boom"):
        call_command("rebuild_search_index", stdout=StringIO())


def test_reindex_command_catches_up_after_a_bulk_update(pages):
    async_to_sync(rebuild.rebuild_index)()
    Page.objects.filter(pk__in=[p.pk for p in pages[:3]]).update(is_published=False)  # no signals
    assert len(titles("generators")) == 5
    out = StringIO()
    call_command("reindex_search", "page", stdout=out)
    assert "Reindexed page: 2 indexed, 3 removed." in out.getvalue()
    assert titles("generators") == ["Tutorial 3", "Tutorial 4"]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_rows_are_written_by_parallel_writers_and_a_failed_one_fails_the_rebuild(
    pages, monkeypatch, clean_queue
):
    from pydotorg.search.backends import database

    async_to_sync(rebuild.rebuild_index)(chunk_size=2)  # 3 batches over 2 writer threads
    assert titles("generators") == [f"Tutorial {n}" for n in range(5)]

    calls = {"n": 0}
    real = database._write_on_own_connection

    def flaky(generation, docs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(generation, docs)

    monkeypatch.setattr(database, "_write_on_own_connection", flaky)
    Page.objects.update(title="Renamed")
    with pytest.raises(OSError, match="disk full"):
        async_to_sync(rebuild.rebuild_index)(chunk_size=2)
    assert calls["n"] >= 2
    assert titles("generators") == [f"Tutorial {n}" for n in range(5)]
    assert IndexGeneration.objects.count() == 1
    assert SearchDocument.objects.count() == 5
