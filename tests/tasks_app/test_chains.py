"""Chains and groups (``tasks_app.chain``, ``group``, ``step``) on real Redis and PostgreSQL."""

import pytest
from saq.job import Status

from tasks_app import chain, group, step
from tasks_app.testing import run_jobs
from tests.queue_state import stored
from tests.sampleapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


def notes() -> list[str]:
    return list(Note.objects.order_by("pk").values_list("text", flat=True))


def test_results_flow_from_step_to_step(redis_db):
    jobs = chain(step("chain_step", label="a"), step("chain_step", label="b"), step("chain_step", label="c")).enqueue()
    assert [stored(job.key).status for job in jobs] == [Status.QUEUED, Status.NEW, Status.NEW]
    run_jobs()
    assert notes() == ["a attempt 1", "b attempt 1", "c attempt 1"]
    last = stored(jobs[-1].key)
    assert last.status == Status.COMPLETE
    assert last.result == {
        "label": "c",
        "parents": [{"label": "b", "parents": [{"label": "a", "parents": []}]}],
    }
