"""Bulk and queue actions: retry all failed, delete finished, empty, pause and resume, each behind a confirmation
page that says how many jobs it will touch; on real Redis, with real workers."""

import asyncio
import logging
import time
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.messages import get_messages
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from saq.job import Job, Status

from tasks_app import enqueue
from tasks_app.engine import attempts, pausing, records
from tasks_app.enqueueing.connections import make_queue
from tasks_app.process import health
from tests import queue_state
from tests.tasks_app.engine.redis_clock import travel

from .conftest import csrf_token

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = reverse("admin:tasks_app_dashboard_queue", args=["default"])
BULK = reverse("admin:tasks_app_dashboard_bulk", args=["default"])
PAUSE = reverse("admin:tasks_app_dashboard_pause", args=["default"])
RESUME = reverse("admin:tasks_app_dashboard_resume", args=["default"])


def finished(task: str, status: Status, count: int, prefix: str) -> list[str]:
    """``count`` jobs of ``task`` that ran once and ended in ``status``, written as a worker writes them."""

    async def go():
        queue = make_queue("default")
        try:
            keys = []
            for n in range(count):
                await records.submit(queue, Job(task, key=f"{prefix}-{n}", retries=1, ttl=86400 * 30))
                job = await attempts.take(queue, "test-worker")
                await attempts.end_attempt(queue, job, status, error="boom" if status != Status.COMPLETE else None)
                keys.append(job.key)
            return keys
        finally:
            await queue.disconnect()

    return asyncio.run(go())


def status_of(key: str) -> str | None:
    job = queue_state.stored(key)
    return job.status.value if job else None


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def confirm(client, **params):
    """GET the confirmation page; returns (response, the hidden fields its form will POST)."""
    response = client.get(BULK, params)
    assert response.status_code == 200, response.content
    return response, {**response.context["hidden"], "csrfmiddlewaretoken": client.cookies["csrftoken"].value}


@pytest.fixture
def signed_in(csrf_client, operator):
    csrf_client.force_login(operator)
    csrf_token(csrf_client, QUEUE)
    return csrf_client


def test_retry_all_failed_jobs_of_one_task(signed_in, caplog):
    failed = finished("dash.fail", Status.FAILED, 3, "f")
    other = finished("dash.flaky", Status.FAILED, 2, "o")
    done = finished("dash.add", Status.COMPLETE, 2, "c")

    response, hidden = confirm(signed_in, action="retry", task="dash.fail")
    assert "This will <strong>retry 3</strong> failed jobs of task dash.fail on queue default." in response.text
    with caplog.at_level(logging.INFO, logger="tasks_app.operations"):
        response = signed_in.post(BULK, hidden)

    assert response.status_code == 302 and response["Location"] == QUEUE
    assert messages_of(response) == ["Retried 3 failed jobs of task dash.fail on queue 'default'."]
    assert [status_of(key) for key in failed] == ["queued"] * 3
    assert [status_of(key) for key in other + done] == ["failed", "failed", "complete", "complete"]
    job = queue_state.stored(failed[0])
    assert (job.retries, job.error) == (2, "boom")  # one more attempt; the last error stays until it ends
    assert job.meta["dashboard"][-1]["action"] == "retried (bulk)" and job.meta["dashboard"][-1]["by"] == "operator"
    assert queue_state.count("queued") == 3
    (record,) = [r for r in caplog.records if getattr(r, "action", None) == "retry"]
    assert (record.user, record.jobs, record.queue) == ("operator", 3, "default")
    page = signed_in.get(QUEUE).text
    assert "retried 3 failed jobs of task dash.fail" in page and "operator" in page


def test_a_bulk_retry_leaves_out_jobs_that_failed_after_the_confirmation(signed_in):
    before = finished("dash.fail", Status.FAILED, 2, "before")
    _, hidden = confirm(signed_in, action="retry")
    with time_machine.travel(timezone.now() + timedelta(seconds=5)):
        after = finished("dash.fail", Status.FAILED, 1, "after")
        response = signed_in.post(BULK, hidden)
    assert messages_of(response) == ["Retried 2 failed jobs on queue 'default'."]
    assert [status_of(key) for key in before + after] == ["queued", "queued", "failed"]


def test_delete_finished_jobs_older_than_n(clocked_default, signed_in):
    with travel(timezone.now() - timedelta(days=3)):  # Redis's clock too: it stamps when jobs end
        old_done = finished("dash.add", Status.COMPLETE, 2, "old-done")
        old_failed = finished("dash.fail", Status.FAILED, 1, "old-failed")
    recent = finished("dash.add", Status.COMPLETE, 1, "recent")
    pending = enqueue("dash.add", a=1, b=2)

    response, hidden = confirm(signed_in, action="delete", older_than=2, unit="days", status="complete")
    assert "This will <strong>delete 2</strong> complete jobs older than 2 days" in response.text
    response = signed_in.post(BULK, hidden)

    assert messages_of(response) == ["Deleted 2 complete jobs older than 2 days on queue 'default'."]
    assert [status_of(key) for key in old_done + old_failed + recent] == [None, None, "failed", "complete"]
    assert status_of(pending.key) == "queued"

    _, hidden = confirm(signed_in, action="delete", older_than=1, unit="days")  # every finished status
    signed_in.post(BULK, hidden)
    assert [status_of(key) for key in old_failed + recent] == [None, "complete"]


def test_delete_finished_jobs_older_than_0_deletes_them_all(signed_in):
    done = finished("dash.add", Status.COMPLETE, 2, "done")
    response, hidden = confirm(signed_in, action="delete", older_than=0, unit="minutes")
    assert hidden["older_than"] == 0  # 0 is a value, not "not given"
    response = signed_in.post(BULK, hidden)
    assert response.status_code == 302
    assert [status_of(key) for key in done] == [None, None]


@pytest.fixture
def worker_without_cron(settings, request):
    """``worker_in_thread`` with no cron entries. The site's entries (``SAQ["CRON_JOBS"]``) would add
    their pending runs to the queue, and the worker's schedule tick writes an entry's next run again
    within a second of its run being aborted: jobs that neither the test nor an operator enqueued."""
    settings.SAQ = {**settings.SAQ, "CRON_JOBS": []}
    return request.getfixturevalue("worker_in_thread")  # started after the change: it reads its cron entries then


def test_empty_a_queue_aborts_its_queued_jobs_only(signed_in, worker_without_cron):
    running = enqueue("dash.sleep", seconds=30)
    queue_state_wait(lambda: status_of(running.key) == "active")
    asyncio.run(_pause())  # so that the worker takes none of the next ones while we look
    queued = [enqueue("dash.add", a=n, b=n).key for n in range(3)]
    scheduled = enqueue("dash.add", a=9, b=9, delay=3600).key
    other_task = enqueue("dash.fail").key

    response, hidden = confirm(signed_in, action="empty", task="dash.add")
    assert "This will <strong>abort 3</strong> queued jobs of task dash.add" in response.text
    response = signed_in.post(BULK, hidden)

    assert messages_of(response) == ["Aborted 3 queued jobs of task dash.add on queue 'default'."]
    assert [status_of(key) for key in queued] == ["aborted"] * 3
    job = queue_state.stored(queued[0])
    assert job.error == "Aborted from the dashboard by operator: queue 'default' emptied."
    assert job.meta["dashboard"][-1]["action"] == "aborted (queue emptied)"
    assert status_of(scheduled) == "queued" and status_of(other_task) == "queued"
    assert status_of(running.key) == "active"
    assert not any(queue_state.listed(key, "queued") for key in queued)

    _, hidden = confirm(signed_in, action="empty", include_scheduled="on")
    response = signed_in.post(BULK, hidden)
    assert messages_of(response) == ["Aborted 2 queued and scheduled jobs on queue 'default'."]
    assert status_of(scheduled) == "aborted" and status_of(other_task) == "aborted"
    assert queue_state.count("incomplete") == 1  # only the running job is left


async def _pause(name="default"):
    queue = make_queue(name)
    try:
        await pausing.pause(queue, "test")
    finally:
        await queue.disconnect()


def queue_state_wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def take(worker="w"):
    """What a worker's take would return now (the worker's own atomic script)."""
    return queue_state._read("default", lambda q: attempts.take(q, worker))


def test_pause_and_resume_from_the_dashboard(signed_in, work):
    job = enqueue("dash.add", a=1, b=2)
    response = signed_in.get(PAUSE)
    assert "holds back its <strong>1</strong> queued and 0 scheduled jobs" in response.text
    response = signed_in.post(PAUSE, {"csrfmiddlewaretoken": signed_in.cookies["csrftoken"].value})
    assert messages_of(response) == ["Queue 'default' is paused: its workers take no new jobs."]

    assert take() is None and status_of(job.key) == "queued"  # a paused queue's workers take nothing
    index = signed_in.get(reverse("admin:tasks_app_taskqueue_changelist")).text
    assert "<strong>paused</strong> by operator" in index
    stats = signed_in.get(reverse("admin:tasks_app_dashboard_stats")).json()
    assert stats["queues"][0]["paused"]["by"] == "operator"
    (probe,) = asyncio.run(health.probe(["default"]))
    assert "PAUSED by operator" in health.describe(probe)
    assert health.exit_code([probe], None) == health.NO_WORKERS  # paused, but judged on its workers only

    assert "Pausing" not in signed_in.get(PAUSE).text  # already paused: nothing to confirm
    response = signed_in.post(RESUME, {"csrfmiddlewaretoken": signed_in.cookies["csrftoken"].value})
    assert messages_of(response)[-1] == "Queue 'default' is resumed: its workers take jobs again."
    work()
    assert status_of(job.key) == "complete"
    trail = signed_in.get(QUEUE).context["trail"]
    assert [(entry["action"], entry["by"]) for entry in trail] == [("resume", "operator"), ("pause", "operator")]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"action": "drop-tables"}, "action: Select a valid choice."),
        ({"action": "delete", "older_than": "-1", "unit": "days"}, "older_than: Ensure this value is greater"),
        ({"action": "delete", "unit": "days"}, "Say how old a finished job must be"),
        ({"action": "delete", "older_than": "1", "unit": "fortnights"}, "unit: Select a valid choice."),
        ({"action": "retry", "task": "x" * 201}, "task: Ensure this value has at most 200 characters"),
    ],
)
def test_bad_choices_are_a_400_that_says_what_is_wrong(signed_in, params, error):
    response = signed_in.get(BULK, params)
    assert response.status_code == 400
    assert error in response.text.replace("&quot;", '"')


def test_a_stale_or_missing_confirmation_changes_nothing(clocked_default, signed_in):
    (key,) = finished("dash.fail", Status.FAILED, 1, "f")
    _, hidden = confirm(signed_in, action="retry")
    clocked_default.shift(2 * 3600)  # two hours pass on Redis's clock, the one the confirmation is on
    stale = signed_in.post(BULK, hidden)
    missing = signed_in.post(BULK, {k: v for k, v in hidden.items() if k != "as_of"})
    assert stale.status_code == 400 and "This confirmation is out of date" in stale.text
    assert missing.status_code == 400
    assert status_of(key) == "failed"


def test_actions_need_manage_jobs_a_csrf_token_and_a_known_queue(client, csrf_client, viewer, operator):
    client.force_login(viewer)
    for url in (QUEUE, BULK + "?action=retry", PAUSE):
        assert client.get(url).status_code == 403
    assert client.post(PAUSE).status_code == 403
    csrf_client.force_login(operator)
    assert csrf_client.post(PAUSE).status_code == 403  # no CSRF token
    assert csrf_client.get(reverse("admin:tasks_app_dashboard_queue", args=["nope"])).status_code == 404
    client.force_login(operator)
    assert client.put(PAUSE).status_code == 405
    assert queue_state._read("default", lambda q: pausing.paused(q)) is None


def test_redis_down_is_a_message_not_a_500(signed_in, closed_port):
    saq = {**settings.SAQ, "QUEUES": {"default": {"URL": f"redis://127.0.0.1:{closed_port}/0"}}}
    with override_settings(SAQ=saq):
        page = signed_in.get(QUEUE)
        counted = signed_in.get(BULK, {"action": "retry"})
        paused = signed_in.post(PAUSE, {"csrfmiddlewaretoken": signed_in.cookies["csrftoken"].value})
        confirmed = {"action": "retry", "as_of": int(time.time() * 1000)}
        acted = signed_in.post(BULK, {**confirmed, "csrfmiddlewaretoken": signed_in.cookies["csrftoken"].value})
    assert page.status_code == 200 and "Cannot reach Redis for queue" in page.text
    assert acted.status_code == 302 and messages_of(acted)[-1].startswith("The action stopped: Cannot reach Redis")
    assert "count again once Redis is back" in messages_of(acted)[-1]
    assert counted.status_code == 302
    assert messages_of(counted)[0].startswith("Nothing can be counted: Cannot reach Redis")
    assert paused.status_code == 302 and messages_of(paused)[-1].startswith("Nothing changed: Cannot reach Redis")


def test_a_web_host_whose_clock_is_off_confirms_on_redis_clock(signed_in):
    (key,) = finished("dash.fail", Status.FAILED, 1, "f")
    _, hidden = confirm(signed_in, action="retry")
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=True):  # only this host's clock
        acted = signed_in.post(BULK, hidden)
    assert acted.status_code == 302, acted
    assert status_of(key) == "queued"
