"""index_content / index_content_batch on the database backend: what is indexed, idempotence, races."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import transaction
from django.utils import timezone

from pydotorg.blogs.models import BlogEntry, Feed
from pydotorg.events.models import Event
from pydotorg.jobs.models import Job, JobType
from pydotorg.search.backends.database import SearchBackend as DatabaseBackend
from pydotorg.search.documents import FOREVER, UnknownContentType, get_type, safe_url
from pydotorg.search.indexer import index_objects
from pydotorg.search.models import SearchDocument
from pydotorg.search.tasks import index_content, index_content_batch
from tasks_app.models import OutboxEntry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("db_backend")]

index = async_to_sync(index_content)


def search(q: str, content_type: str | None = None):
    return async_to_sync(DatabaseBackend().search)(q, content_type)


def titles(q: str, content_type: str | None = None) -> list[str]:
    return [hit.title for hit in search(q, content_type).hits]


def test_upsert_is_idempotent_and_unpublish_deletes(make_page):
    page = make_page(title="Unicode HOWTO", content="Strings are sequences of code points.")
    assert index({}, "page", page.pk) == {"content_type": "page", "upserted": [page.pk], "deleted": []}
    index({}, "page", page.pk)
    assert SearchDocument.objects.filter(content_type="page", object_id=page.pk).count() == 1
    assert titles("code points") == ["Unicode HOWTO"]

    Page = type(page)
    Page.objects.filter(pk=page.pk).update(is_published=False)
    assert index({}, "page", page.pk)["deleted"] == [page.pk]
    assert titles("code points") == []
    assert index({}, "page", page.pk)["deleted"] == [page.pk]  # deleting twice is fine


def test_missing_object_is_removed(make_page):
    page = make_page(title="Gone soon", content="ephemeral words")
    index({}, "page", page.pk)
    pk = page.pk
    type(page).objects.filter(pk=pk).delete()
    assert index({}, "page", pk)["deleted"] == [pk]
    assert titles("ephemeral") == []
    assert index({}, "page", 987654)["deleted"] == [987654]  # never existed


def test_unknown_type_is_a_clear_failure():
    with pytest.raises(UnknownContentType, match=r"'pages'.*page, blog, job, event"):
        index({}, "pages", 1)


def test_jobs_are_indexed_only_when_approved_and_unexpired(make_job):
    live = make_job(job_title="Python backend engineer")
    draft = make_job(job_title="Python draft engineer", status="draft")
    expired = make_job(job_title="Python expired engineer", expires=timezone.now() - timedelta(days=1))
    async_to_sync(index_content_batch)({}, "job", [live.pk, draft.pk, expired.pk])
    assert titles("engineer") == ["Python backend engineer"]
    assert titles("lisbon snake oil") == ["Python backend engineer"]  # type-specific fields are searched too

    doc = get_type("job").to_document(Job.objects.get(pk=live.pk))
    assert doc["company"] == "Snake Oil Ltd"
    assert doc["location"] == "Lisbon, Portugal"
    assert doc["visible_until"] == int(live.expires.timestamp())


def test_a_job_that_expires_without_a_save_stops_being_shown(make_job):
    soon = make_job(job_title="Short-lived engineer", expires=timezone.now() + timedelta(seconds=1.5))
    index({}, "job", soon.pk)
    assert titles("engineer") == ["Short-lived engineer"]
    time.sleep(max(0.0, soon.expires.timestamp() - time.time()) + 0.6)
    # Still in the index until the nightly rebuild, but its visible_until has passed.
    assert SearchDocument.objects.filter(content_type="job", object_id=soon.pk).exists()
    assert titles("engineer") == []


def test_documents_carry_common_and_type_specific_fields(make_page):
    feed = Feed.objects.create(name="Python Insider", feed_url="https://example.org/feed")
    entry = BlogEntry.objects.create(
        feed=feed,
        guid="1",
        title="3.14 released",
        summary="<p>It is <b>out</b>.</p>",
        pub_date=timezone.now(),
        url="https://blog.example.org/314",
    )
    event = Event.objects.create(title="PyCon US", venue="Convention Center", starts_at=timezone.now())
    blog, ev = get_type("blog").to_document(entry), get_type("event").to_document(event)
    common = {"id", "object_id", "content_type", "title", "description", "content", "url", "created", "modified"}
    assert common <= set(blog) and common <= set(ev)
    assert blog["id"] == f"blog-{entry.pk}" and blog["feed"] == "Python Insider"
    assert blog["description"] == "It is out."  # markup stripped: documents are plain text
    assert blog["published"] == int(entry.pub_date.timestamp())
    assert ev["venue"] == "Convention Center" and ev["starts"] == int(event.starts_at.timestamp())
    assert ev["visible_until"] == FOREVER
    assert all(isinstance(blog[k], int) for k in ("created", "modified", "published"))


def test_unsafe_links_never_reach_the_index():
    feed = Feed.objects.create(name="Evil", feed_url="https://evil.example/feed")
    entry = BlogEntry.objects.create(
        feed=feed, guid="x", title="Click me", url="javascript:alert(1)", pub_date=timezone.now()
    )
    # A blog hit opens the entry's page on this site, which links out only to http(s).
    assert get_type("blog").to_document(entry)["url"] == f"/blogs/{entry.pk}/"


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "//evil.example/",
        "/\\evil.example/",
        "/a\nb/",
        "data:text/html,x",
        "",
        "https://",
        "http:/a",
        "https://good.example\\@evil.example/",
    ],
)
def test_result_links_are_site_paths_or_web_urls_only(url):
    assert safe_url(url) == ""


@pytest.mark.parametrize("url", ["/about/", "https://www.python.org/", "http://example.com/a?b=c"])
def test_site_paths_and_web_urls_are_kept(url):
    assert safe_url(url) == url


def test_a_stale_write_landing_last_is_corrected(make_page):
    """Two jobs for one object: the older one's write lands after the newer one's; the index ends fresh."""
    page = make_page(title="Release notes", content="draft wording alpha")

    class RacingBackend(DatabaseBackend):
        raced = False

        async def apply(self, content_type, upserts, deletes):
            if not self.raced:  # this job read "alpha"; before its write lands, the page changes...
                RacingBackend.raced = True
                await sync_to_async(edit)()
                await index_objects("page", [page.pk], DatabaseBackend())  # ...and the follow-up job finishes
            await super().apply(content_type, upserts, deletes)

    def edit():
        page.content = "final wording omega"
        page.save()

    result = async_to_sync(index_objects)("page", [page.pk], RacingBackend())
    assert result["upserted"] == [page.pk]
    assert titles("omega") == ["Release notes"]
    assert titles("alpha") == []


def test_saves_schedule_one_update_per_object_in_the_transaction(make_page, make_job):
    with transaction.atomic():
        page = make_page()
        job = make_job()
        job.job_types.add(JobType.objects.create(name="Remote"))
    keys = sorted(OutboxEntry.objects.values_list("job_key", flat=True))
    assert f"search:page:{page.pk}:0" in keys
    assert keys.count(f"search:job:{job.pk}:0") == 2  # the save and the job-type change share one key


def test_feed_rename_reindexes_its_entries_in_batches_and_delete_skips_per_entry_jobs():
    feed = Feed.objects.create(name="Old name", feed_url="https://example.org/f")
    BlogEntry.objects.bulk_create(
        BlogEntry(feed=feed, guid=str(n), title=f"Entry {n}", pub_date=timezone.now()) for n in range(3)
    )
    OutboxEntry.objects.all().delete()
    feed.last_fetched = timezone.now()
    feed.save()  # no rename: nothing to reindex
    assert not OutboxEntry.objects.exists()

    feed.name = "New name"
    feed.save()
    (batch,) = OutboxEntry.objects.all()
    assert batch.payload["function"] == "index_content_batch" and len(batch.payload["kwargs"]["ids"]) == 3

    OutboxEntry.objects.all().delete()
    feed.delete()
    assert [e.payload["function"] for e in OutboxEntry.objects.all()] == ["index_content_batch"]
