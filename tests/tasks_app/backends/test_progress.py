"""A ``django.tasks`` Task reports progress through its TaskContext; its TaskResult shows it."""

import pytest
from django.tasks import TaskResultStatus, default_task_backend

from . import tasks as test_tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_sync_task_reports_through_its_context_and_the_result_shows_it(redis_client, work):
    result = test_tasks.reports_progress_then_fails.enqueue("a quarter done")
    assert (result.progress, result.progress_message) == (0.0, None)
    work()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert (result.progress, result.progress_message) == (0.25, "a quarter done")
    again = default_task_backend.get_result(result.id)
    assert (again.progress, again.progress_message) == (0.25, "a quarter done")


def test_an_async_task_reports_and_its_finished_result_is_whole(redis_client, work):
    result = test_tasks.reports_progress_async.enqueue()
    work()
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == "True"
    assert (result.progress, result.progress_message) == (1.0, "half")


def test_a_context_of_another_task_is_refused():
    from types import SimpleNamespace

    from tasks_app import report_progress

    with pytest.raises(ValueError, match="neither a task's ctx nor the running Task's context"):
        report_progress(SimpleNamespace(task_result=SimpleNamespace(id="other")), 0.5)
