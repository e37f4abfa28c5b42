"""Search follows the text it shows (issue 23, item 3): renaming or deleting an object whose text is in
other objects' documents (a job's category or type, an entry's feed) re-indexes those documents.

End to end: the admin (test client) on PostgreSQL, the jobs on Redis, a real worker (run_jobs()).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from pydotorg.jobs.models import Job, JobCategory, JobType
from pydotorg.search.models import SearchDocument
from tasks_app.models import OutboxEntry
from tasks_app.testing import run_jobs

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("db_backend", "clean_queue")]


def found(client, q: str) -> list[tuple[str, int]]:
    response = client.get("/api/search/", {"q": q})
    assert response.status_code == 200, response.content
    return [(hit["type"], hit["id"]) for hit in response.json()["hits"]]


def worked() -> None:
    run = run_jobs()
    assert not run.failures, run.failures


def extra_of(job: Job) -> str:
    return SearchDocument.objects.get(content_type="job", object_id=job.pk).extra


def queued(redis) -> int:
    return redis.llen("saq:default:queued")


@pytest.fixture
def indexed_jobs(make_job):
    """Two visible jobs in the category 'Quokkaology', typed 'Wallabyshift', both indexed."""
    category = JobCategory.objects.create(name="Quokkaology")
    kind = JobType.objects.create(name="Wallabyshift")
    jobs = [make_job(job_title=f"Engineer {n}", category=category) for n in range(2)]
    for job in jobs:
        job.job_types.add(kind)
    worked()
    return category, kind, jobs


def test_a_category_renamed_in_the_admin_is_found_by_its_new_name_only(admin_client, indexed_jobs):
    category, _, jobs = indexed_jobs
    expected = sorted(("job", job.pk) for job in jobs)
    assert sorted(found(admin_client, "Quokkaology")) == expected

    change = reverse("admin:jobs_jobcategory_change", args=[category.pk])
    response = admin_client.post(change, {"name": "Numbatronics"})
    assert response.status_code == 302, response.content
    worked()

    assert found(admin_client, "Quokkaology") == []
    assert sorted(found(admin_client, "Numbatronics")) == expected


def test_a_burst_of_renames_is_one_job_and_a_rename_after_the_job_started_is_another(
    admin_client, indexed_jobs, clean_queue
):
    from pydotorg.search import state

    category, _, jobs = indexed_jobs
    change = reverse("admin:jobs_jobcategory_change", args=[category.pk])
    for name in ("Numbatronics", "Bilbyism", "Dunnartry"):
        assert admin_client.post(change, {"name": name}).status_code == 302
    assert queued(clean_queue) == 1  # one index_content_batch job for both jobs, not three
    assert not OutboxEntry.objects.exists()  # every one delivered (two of them to the same key)

    state.claim("job", [job.pk for job in jobs])  # the job starts: a rename now must not join it
    assert admin_client.post(change, {"name": "Potoroology"}).status_code == 302
    assert queued(clean_queue) == 2
    worked()
    assert len(found(admin_client, "Potoroology")) == 2
    assert found(admin_client, "Dunnartry") == []


def test_a_save_that_changes_no_shown_text_reindexes_nothing(admin_client, indexed_jobs, clean_queue):
    category, _, _ = indexed_jobs
    change = reverse("admin:jobs_jobcategory_change", args=[category.pk])
    assert admin_client.post(change, {"name": "Quokkaology"}).status_code == 302
    assert queued(clean_queue) == 0


def test_a_job_type_deleted_in_the_admin_leaves_its_jobs_documents(admin_client, indexed_jobs):
    _, kind, jobs = indexed_jobs
    assert all("Wallabyshift" in extra_of(job) for job in jobs)

    delete = reverse("admin:jobs_jobtype_delete", args=[kind.pk])
    response = admin_client.post(delete, {"post": "yes"})
    assert response.status_code == 302, response.content
    assert not JobType.objects.exists()
    worked()

    assert all("Wallabyshift" not in extra_of(job) for job in jobs)
    assert found(admin_client, "Wallabyshift") == []
    assert len(found(admin_client, "Engineer")) == 2  # the jobs themselves are still found


def test_a_category_deleted_in_the_admin_leaves_its_jobs_documents(admin_client, indexed_jobs):
    category, _, jobs = indexed_jobs
    delete = reverse("admin:jobs_jobcategory_delete", args=[category.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert Job.objects.filter(category__isnull=True).count() == 2  # SET_NULL: the jobs stay
    worked()
    assert found(admin_client, "Quokkaology") == []
    assert all("Quokkaology" not in extra_of(job) for job in jobs)


def test_links_cleared_from_the_types_side_reindex_the_jobs(client, indexed_jobs):
    _, kind, jobs = indexed_jobs
    kind.jobs.clear()  # m2m_changed with pk_set None: the jobs are read before the links go
    worked()
    assert found(client, "Wallabyshift") == []

    kind.jobs.add(jobs[0])
    worked()
    assert found(client, "Wallabyshift") == [("job", jobs[0].pk)]

    kind.jobs.remove(jobs[0])
    worked()
    assert found(client, "Wallabyshift") == []


def test_types_changed_on_the_job_in_the_admin_reindex_it(admin_client, indexed_jobs):
    _, _, jobs = indexed_jobs
    other = JobType.objects.create(name="Bandicootery")
    job = jobs[0]
    change = reverse("admin:jobs_job_change", args=[job.pk])
    form = {
        "job_title": job.job_title,
        "company_name": job.company_name,
        "city": job.city,
        "region": job.region,
        "country": job.country,
        "description": job.description,
        "requirements": job.requirements,
        "status": job.status,
        "expires_0": job.expires.strftime("%Y-%m-%d"),
        "expires_1": job.expires.strftime("%H:%M:%S"),
        "job_types": [str(other.pk)],
        "category": str(job.category_id),
    }
    response = admin_client.post(change, form)
    assert response.status_code == 302, response.content
    worked()
    assert found(admin_client, "Bandicootery") == [("job", job.pk)]
    assert found(admin_client, "Wallabyshift") == [("job", jobs[1].pk)]


def test_a_feed_renamed_reindexes_its_entries_and_a_fetch_does_not(client, clean_queue):
    from django.utils import timezone

    from pydotorg.blogs.models import BlogEntry, Feed

    feed = Feed.objects.create(name="Platypus Weekly", feed_url="https://example.org/platypus.xml")
    entries = [
        BlogEntry.objects.create(feed=feed, guid=str(n), title=f"Issue {n}", pub_date=timezone.now()) for n in range(3)
    ]
    worked()
    assert len(found(client, "Platypus")) == 3

    feed.last_fetched = timezone.now()
    feed.save()  # what every refresh does: the entries show no fetch time, so nothing is queued
    assert queued(clean_queue) == 0

    feed.name = "Echidna Digest"
    feed.save()
    worked()
    assert found(client, "Platypus") == []
    assert sorted(found(client, "Echidna")) == sorted(("blog", e.pk) for e in entries)
