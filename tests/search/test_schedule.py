"""schedule_index: index updates recorded in the caller's transaction, batched, nothing on rollback."""

import pytest
from django.db import transaction

from pydotorg.search.documents import UnknownContentType
from pydotorg.search.indexing import BATCH_SIZE, schedule_index
from tasks_app.models import OutboxEntry

pytestmark = pytest.mark.django_db


def outbox(function: str) -> list[OutboxEntry]:
    return [e for e in OutboxEntry.objects.order_by("id") if e.payload["function"] == function]


def test_many_ids_become_one_batch_job_per_chunk():
    with transaction.atomic():
        schedule_index("blog", range(1, 1201))
        entries = outbox("index_content_batch")
        # Recorded in the transaction, before commit.
        assert [len(e.payload["kwargs"]["ids"]) for e in entries] == [BATCH_SIZE, BATCH_SIZE, 200]
        assert sorted(i for e in entries for i in e.payload["kwargs"]["ids"]) == list(range(1, 1201))


def test_one_id_takes_the_deduplicated_per_object_path():
    with transaction.atomic():
        schedule_index("page", [7])
    (entry,) = outbox("index_content")
    assert entry.payload["kwargs"] == {"content_type": "page", "content_id": 7}
    assert entry.job_key == "search:page:7:0"


def test_rollback_schedules_nothing():
    with pytest.raises(RuntimeError), transaction.atomic():
        schedule_index("blog", [1, 2, 3])
        raise RuntimeError("boom")
    assert OutboxEntry.objects.count() == 0


def test_unknown_type_is_refused_in_the_caller():
    with pytest.raises(UnknownContentType, match=r"'blogs'.*page, blog, job, event"):
        schedule_index("blogs", [1])
