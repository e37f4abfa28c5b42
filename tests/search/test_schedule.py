"""schedule_index: index updates recorded in the caller's transaction, batched, nothing on rollback;
blogs' bulk upserts reach it through blogs' own signal."""

import pytest
from django.db import transaction

from pydotorg.blogs.models import BlogEntry
from pydotorg.blogs.signals import entries_changed
from pydotorg.search.documents import UnknownContentType
from pydotorg.search.indexer import BATCH_SIZE
from pydotorg.search.scheduling import schedule_index
from tasks_app.models import OutboxEntry

pytestmark = pytest.mark.django_db


def outbox(function: str) -> list[OutboxEntry]:
    return [e for e in OutboxEntry.objects.order_by("id") if e.payload["function"] == function]


def test_many_ids_become_one_batch_job_per_chunk():
    with transaction.atomic():
        keys = schedule_index("blog", range(1, 1201))
        entries = outbox("index_content_batch")
        # Recorded in the transaction, before commit.
        assert [len(e.payload["kwargs"]["ids"]) for e in entries] == [BATCH_SIZE, BATCH_SIZE, 200]
        assert sorted(i for e in entries for i in e.payload["kwargs"]["ids"]) == list(range(1, 1201))
        assert [e.job_key for e in entries] == keys


@pytest.mark.django_db(transaction=True)
def test_every_batch_job_reaches_redis_on_commit(clean_queue):
    with transaction.atomic():
        keys = schedule_index("blog", range(1, 1201))
        assert clean_queue.llen("saq:default:queued") == 0  # nothing before commit
    assert clean_queue.llen("saq:default:queued") == len(keys) == 3
    assert not OutboxEntry.objects.exists()  # delivered, so the outbox is empty again


def test_blogs_bulk_upserts_are_scheduled_through_its_signal():
    with transaction.atomic():
        entries_changed.send(sender=BlogEntry, ids=[3, 1, 2, 3], using="default")
        (entry,) = outbox("index_content_batch")
    assert entry.payload["kwargs"] == {"content_type": "blog", "ids": [1, 2, 3]}


def test_one_id_takes_the_deduplicated_per_object_path(settings):
    settings.SEARCH_INDEX_DEBOUNCE_MS = 500
    with transaction.atomic():
        schedule_index("page", [7])
    (entry,) = outbox("index_content")
    assert entry.payload["kwargs"] == {"content_type": "page", "content_id": 7}
    assert entry.job_key == "search:page:7:0"
    assert entry.payload["meta"]["debounce"] == [0.5, 5.0]  # in seconds, and 10x for its ceiling


def test_a_burst_of_saves_is_one_debounced_job_and_zero_turns_it_off(
    settings, captured_jobs, django_capture_on_commit_callbacks
):
    settings.SEARCH_INDEX_DEBOUNCE_MS = 500
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            schedule_index("page", [7])
    (job,) = captured_jobs
    assert (job.key, job.job.meta["debounce"]) == ("search:page:7:0", [0.5, 5.0])
    settings.SEARCH_INDEX_DEBOUNCE_MS = 0
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        schedule_index("page", [8])
    assert "debounce" not in captured_jobs[1].job.meta


def test_rollback_schedules_nothing():
    with pytest.raises(RuntimeError), transaction.atomic():
        schedule_index("blog", [1, 2, 3])
        raise RuntimeError("boom")
    assert OutboxEntry.objects.count() == 0


def test_unknown_type_is_refused_in_the_caller():
    with pytest.raises(UnknownContentType, match=r"'blogs'.*page, blog, job, event"):
        schedule_index("blogs", [1])


def test_reindex_enqueue_schedules_batch_jobs_in_one_transaction(make_page):
    from io import StringIO

    from django.core.management import call_command

    pages = [make_page(title=f"Page {n}") for n in range(3)]
    OutboxEntry.objects.all().delete()  # the saves' own per-object jobs
    out = StringIO()
    call_command("reindex_search", "page", "--enqueue", stdout=out)
    assert "Scheduled 3 page objects in 1 job(s)." in out.getvalue()
    (entry,) = outbox("index_content_batch")
    assert entry.payload["kwargs"] == {"content_type": "page", "ids": sorted(p.pk for p in pages)}


def test_deduplicated_batches_share_a_key_until_their_job_claims_them():
    from pydotorg.search import state

    ids = range(1, 601)
    with transaction.atomic():
        first = schedule_index("job", ids, deduplicate=True)
        again = schedule_index("job", reversed(ids), deduplicate=True)
    assert first == again and len(first) == 2  # the same ids before the job starts: the same jobs
    assert schedule_index("job", ids) != first  # without deduplicate: jobs of their own, as before

    state.claim("job", range(1, 501))  # the first batch's job started
    later = schedule_index("job", ids, deduplicate=True)
    assert later[0] != first[0] and later[1] == first[1]
