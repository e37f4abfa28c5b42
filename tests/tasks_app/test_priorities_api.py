"""Priorities through the public API, on real Redis and PostgreSQL: ``@task(priority=)``, per call, in bulk
and on commit; bad values refused before Redis; ``run_jobs`` (captured and with a real worker) runs the
highest first."""

import pytest
from django.db import transaction

from tasks_app import enqueue, enqueue_many, enqueue_on_commit, task
from tasks_app.exceptions import TaskArgumentError
from tasks_app.registry import registry
from tasks_app.testing import capture_jobs, run_jobs
from tests.queue_state import count, stored
from tests.sampleapp.models import Note


@pytest.mark.parametrize("value", [101, -101, "high", True, 1.5])
def test_a_bad_priority_is_refused_before_redis(redis_db, value):
    with pytest.raises(TaskArgumentError, match=r"priority=.* must be a whole number from -100 to 100"):
        enqueue("noop", priority=value)
    assert count("incomplete") == 0


def test_a_bad_priority_on_task_is_refused_at_decoration():
    with pytest.raises(TaskArgumentError, match=r"@task: priority='urgent' must be a whole number from -100 to 100"):

        @task(name="never_registered", priority="urgent")
        def never(ctx) -> None: ...

    assert "never_registered" not in registry


@pytest.mark.django_db(transaction=True)
def test_the_tasks_priority_is_the_default_and_a_call_overrides_it(redis_db):
    @task(name="urgent_noop", priority=40)
    async def urgent_noop(ctx) -> None: ...

    try:
        assert enqueue("urgent_noop").priority == 40
        assert enqueue("urgent_noop", priority=-1).priority == -1
        assert [job.priority for job in enqueue_many("urgent_noop", [{}, {}], priority=7)] == [7, 7]
        with transaction.atomic():
            key = enqueue_on_commit("urgent_noop", priority=9)  # through the outbox row
        assert stored(key).priority == 9
        assert count("queued") == 5
    finally:
        registry.unregister("urgent_noop")


@pytest.mark.django_db
def test_run_jobs_runs_captured_jobs_highest_priority_first():
    with capture_jobs() as captured:
        enqueue("add_note", text="low", priority=-5)
        enqueue("add_note", text="plain")
        enqueue("add_note", text="high", priority=50)
        enqueue("add_note", text="plain again")
        run_jobs()
    assert list(Note.objects.order_by("pk").values_list("text", flat=True)) == ["high", "plain", "plain again", "low"]
    assert [job.options["priority"] for job in captured] == [-5, 0, 50, 0]


@pytest.mark.django_db(transaction=True)
def test_run_jobs_with_a_real_worker_takes_the_highest_priority_first(redis_db, settings):
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {**settings.SAQ["QUEUES"]["default"], "CONCURRENCY": 1}}}
    enqueue("add_note", text="low", priority=-5)
    enqueue("add_note", text="plain")
    enqueue("add_note", text="high", priority=50)
    done = run_jobs()
    assert len(done) == 3
    assert list(Note.objects.order_by("pk").values_list("text", flat=True)) == ["high", "plain", "low"]
