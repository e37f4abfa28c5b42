"""Database backend, end to end on PostgreSQL: admin edit -> outbox -> Redis -> runworker -> /api/search/."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import reverse

from pydotorg.pages.models import Page
from tasks_app.models import OutboxEntry
from tasks_app.testing import run_jobs

from .conftest import run_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("db_backend", "clean_queue")]


def page_form(**overrides) -> dict:
    form = {
        "title": "Embedding the interpreter",
        "path": "doc/embedding/",
        "keywords": "",
        "description": "Call Python from a C program.",
        "content": "Link against libpython and call Py_Initialize before anything else.",
        "content_format": "markdown",
        "is_published": "on",
    }
    form.update(overrides)
    return form


def api(client, q: str, **params) -> dict:
    response = client.get("/api/search/", {"q": q, **params})
    assert response.status_code == 200, response.content
    return response.json()


def queued_jobs(connection) -> int:
    """Jobs waiting to run: on the queued list, or (debounced: SEARCH_INDEX_DEBOUNCE_MS) due shortly."""
    return connection.zcard("saq:default:incomplete")


def test_admin_edit_is_searchable_after_the_worker_runs_and_unpublish_removes_it(admin_client, clean_queue):
    response = admin_client.post(reverse("admin:pages_page_add"), page_form())
    assert response.status_code == 302, response.content
    page = Page.objects.get(path="doc/embedding/")
    # Delivered to Redis on commit; the outbox row is gone.
    assert queued_jobs(clean_queue) == 1
    assert not OutboxEntry.objects.exists()

    assert api(admin_client, "Py_Initialize libpython")["total"] == 0  # not before the worker ran
    run_worker()

    found = api(admin_client, "libpython")
    assert found["query"] == "libpython"
    assert found["total"] == 1
    (hit,) = found["hits"]
    assert hit == {
        "type": "page",
        "id": page.pk,
        "title": "Embedding the interpreter",
        "url": "/doc/embedding/",
        "snippet": hit["snippet"],
    }
    assert "<mark>libpython</mark>" in hit["snippet"]

    change = reverse("admin:pages_page_change", args=[page.pk])
    response = admin_client.post(change, {k: v for k, v in page_form().items() if k != "is_published"})
    assert response.status_code == 302
    run_worker()
    assert api(admin_client, "libpython") == {"query": "libpython", "total": 0, "hits": []}


def test_a_rolled_back_save_enqueues_nothing(clean_queue):
    with pytest.raises(RuntimeError), transaction.atomic():
        Page.objects.create(title="Draft", path="draft/", content="never committed")
        assert OutboxEntry.objects.count() == 1  # recorded in the transaction...
        raise RuntimeError("editor hit cancel")
    assert not OutboxEntry.objects.exists()  # ...and rolled back with it
    assert queued_jobs(clean_queue) == 0
    assert clean_queue.keys("saq:job:*") == []


def test_ten_quick_saves_give_one_job_and_a_save_during_the_job_gets_a_second(make_page, clean_queue):
    from pydotorg.search import state

    page = make_page(title="Release schedule", content="3.14 ships in October.")
    for n in range(9):
        page.content = f"3.14 ships in October, revision {n}."
        page.save()
    assert queued_jobs(clean_queue) == 1

    # The job starts (its first step is the claim); a save made now must not join it.
    state.claim("page", [page.pk])
    page.content = "3.14 ships in October, final word: kestrel."
    page.save()
    assert queued_jobs(clean_queue) == 2

    run_worker()
    from django.test import Client

    assert api(Client(), "kestrel")["total"] == 1


@pytest.mark.django_db  # the job only has to run: in this test's transaction, without Redis or a worker
def test_deleting_content_removes_it(make_page, admin_client, captured_jobs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        page = make_page(title="Obsolete page", content="zeppelin instructions")
    assert captured_jobs.tasks == ["index_content"]
    run_jobs()
    assert api(admin_client, "zeppelin")["total"] == 1
    with django_capture_on_commit_callbacks(execute=True):
        page.delete()
    assert not run_jobs().failures
    assert api(admin_client, "zeppelin")["total"] == 0
