"""Retry, abort and enqueue: CSRF-protected POSTs that really change the jobs in Redis."""

import time
from datetime import UTC, datetime

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tasks_app import enqueue
from tests import queue_state

from .conftest import csrf_token

pytestmark = pytest.mark.django_db(transaction=True)

RETRY = reverse("admin:tasks_app_dashboard_retry")
ABORT = reverse("admin:tasks_app_dashboard_abort")
ENQUEUE = reverse("admin:tasks_app_taskqueue_add")


def job_url(key, queue="default"):
    return reverse("admin:tasks_app_dashboard_job", args=[queue, key])


def stored(redis_client, key, queue="default"):
    return queue_state.stored(key, queue).to_dict()


def in_list(redis_client, name, key, queue="default"):
    return queue_state.listed(key, name, queue)


def post(client, url, page, **data):
    """POST as the dashboard's forms do: with the CSRF token from the page the button is on."""
    return client.post(url, {"csrfmiddlewaretoken": csrf_token(client, page), **data})


def test_retry_a_failed_job(csrf_client, operator, redis_client, work):
    job = enqueue("dash.flaky")
    work()
    assert stored(redis_client, job.key)["status"] == "failed"
    csrf_client.force_login(operator)

    response = post(csrf_client, RETRY, job_url(job.key), queue="default", key=job.key)

    assert response.status_code == 302 and response["Location"] == job_url(job.key)
    after = stored(redis_client, job.key)
    assert after["status"] == "queued"
    assert in_list(redis_client, "queued", job.key)
    assert after["meta"]["dashboard"][-1]["action"] == "retried"
    assert after["meta"]["dashboard"][-1]["by"] == "operator"
    assert "upstream down" in after["error"]  # the last error stays visible until the next attempt ends
    work()
    done = stored(redis_client, job.key)
    assert (done["status"], done["result"], done["attempts"]) == ("complete", "recovered", 2)
    # "Attempts" counts what really ran, out of what it was allowed (retries=0: one, plus the manual retry).
    page = csrf_client.get(job_url(job.key)).content.decode()
    assert "<th>Attempts</th><td>2 of 2</td>" in page


def test_retry_refuses_a_job_that_did_not_fail(csrf_client, operator, redis_client):
    job = enqueue("dash.add", a=1, b=2)
    csrf_client.force_login(operator)
    response = post(csrf_client, RETRY, job_url(job.key), queue="default", key=job.key)
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == [f"Only failed or aborted jobs can be retried; job '{job.key}' is queued."]
    assert queue_state.count("queued") == 1


def test_abort_a_queued_job(csrf_client, operator, redis_client, work):
    job = enqueue("dash.add", a=1, b=2)
    csrf_client.force_login(operator)

    response = post(csrf_client, ABORT, job_url(job.key), queue="default", key=job.key)

    assert response.status_code == 302
    after = stored(redis_client, job.key)
    assert after["status"] == "aborted"
    assert after["error"] == "Aborted from the dashboard by operator."
    assert not in_list(redis_client, "queued", job.key)
    assert not in_list(redis_client, "incomplete", job.key)
    work()  # nothing left to run
    assert stored(redis_client, job.key)["status"] == "aborted"


def test_abort_a_scheduled_job(csrf_client, operator, redis_client):
    job = enqueue("dash.add", a=1, b=2, delay=600)
    csrf_client.force_login(operator)
    post(csrf_client, ABORT, job_url(job.key), queue="default", key=job.key)
    assert stored(redis_client, job.key)["status"] == "aborted"
    assert queue_state.count("incomplete") == 0


def test_abort_an_active_job(csrf_client, operator, redis_client, worker_in_thread):
    job = enqueue("dash.sleep", seconds=30)
    deadline = time.monotonic() + 10
    while stored(redis_client, job.key)["status"] != "active":
        assert time.monotonic() < deadline, "the worker did not start the job"
        time.sleep(0.05)
    csrf_client.force_login(operator)

    post(csrf_client, ABORT, job_url(job.key), queue="default", key=job.key)

    deadline = time.monotonic() + 10
    while stored(redis_client, job.key)["status"] != "aborted":  # the worker cancels it
        assert time.monotonic() < deadline, stored(redis_client, job.key)
        time.sleep(0.05)
    assert stored(redis_client, job.key).get("result") is None  # the 30 s sleep never finished
    assert queue_state.count("active") == 0


def test_abort_refuses_a_finished_job(csrf_client, operator, redis_client, work):
    job = enqueue("dash.add", a=1, b=2)
    work()
    csrf_client.force_login(operator)
    response = post(csrf_client, ABORT, job_url(job.key), queue="default", key=job.key)
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == [f"Only queued, scheduled or active jobs can be aborted; job '{job.key}' is complete."]
    assert stored(redis_client, job.key)["status"] == "complete"


@pytest.mark.parametrize("url", [RETRY, ABORT, ENQUEUE])
def test_actions_without_a_csrf_token_are_refused(csrf_client, operator, redis_client, work, url):
    failed = enqueue("dash.fail")
    work()
    queued = enqueue("dash.add", a=1, b=2)
    key = failed.key if url == RETRY else queued.key
    csrf_client.force_login(operator)
    before = queue_state.stored(key).to_dict()

    response = csrf_client.post(url, {"queue": "default", "key": key, "task": "dash.add", "arguments": "{}"})

    assert response.status_code == 403
    assert queue_state.stored(key).to_dict() == before
    assert len(queue_state.job_keys()) == 2


def test_enqueue_form(csrf_client, operator, redis_client):
    csrf_client.force_login(operator)
    response = post(
        csrf_client, ENQUEUE, ENQUEUE, task="dash.add", arguments='{"a": 1, "b": 41}', key="answer", delay=""
    )
    assert response.status_code == 302 and response["Location"] == job_url("answer")
    job = stored(redis_client, "answer")
    assert (job["function"], job["kwargs"], job["status"]) == ("dash.add", {"a": 1, "b": 41}, "queued")
    assert job["retries"] == 4  # the task's options travel as with every enqueue: 3 retries after the first

    with_options = post(
        csrf_client, ENQUEUE, ENQUEUE, task="dash.add", arguments='{"a": 1, "b": 1}', timeout="30", retries="1"
    )
    job = stored(redis_client, with_options["Location"].rstrip("/").rsplit("/", 1)[1])
    assert (job["timeout"], job["retries"]) == (30, 2)  # 1 retry after the first attempt

    at = post(csrf_client, ENQUEUE, ENQUEUE, task="dash.add", arguments='{"a": 1, "b": 1}', at="2030-01-02 03:04")
    job = stored(redis_client, at["Location"].rstrip("/").rsplit("/", 1)[1])
    assert job["scheduled"] == datetime(2030, 1, 2, 3, 4, tzinfo=UTC).timestamp()  # TIME_ZONE is UTC

    again = post(csrf_client, ENQUEUE, ENQUEUE, task="dash.add", arguments='{"a": 2, "b": 2}', key="answer")
    assert [str(m) for m in get_messages(again.wsgi_request)] == [
        "Job answer is already pending; nothing new was enqueued."
    ]
    assert stored(redis_client, "answer")["kwargs"] == {"a": 1, "b": 41}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"task": "dash.add", "arguments": '{"a": 1}'}, "arguments", "dash.add(): missing a required argument: 'b'"),
        ({"task": "dash.add", "arguments": '{"a": 1, "b": 2, "c": 3}'}, "arguments", "unexpected keyword argument"),
        ({"task": "dash.add", "arguments": '{"a": 1, "b": 2, "timeout": 3}'}, "arguments", "timeout is a SAQ job"),
        ({"task": "dash.add", "arguments": "[1, 2]"}, "arguments", "must be a JSON object"),
        ({"task": "dash.add", "arguments": "{a: 1}"}, "arguments", "Arguments must be JSON"),
        ({"task": "dash.add", "arguments": '{"a": 1, "b": 2}', "delay": "-1"}, "delay", "greater than or equal"),
        ({"task": "dash.nope", "arguments": "{}"}, "task", "Select a valid choice"),
        (
            {"task": "dash.add", "arguments": '{"a": 1, "b": 2}', "delay": "5", "at": "2030-01-01 00:00"},
            "at",
            "not both",
        ),
        ({"task": "dash.add", "arguments": '{"a": 1, "b": 2}', "retries": "-1"}, "retries", "greater than or equal"),
        ({"task": "dash.add", "arguments": '{"a": "one", "b": 2}'}, "arguments", "argument a must be int, got 'one'"),
        ({"task": "dash.add", "arguments": '{"a": NaN, "b": 2}'}, "arguments", "holds NaN or Infinity"),
        (
            {"task": "dash.add", "arguments": '{"a": ' + "[" * 5000 + "]" * 5000 + ', "b": 2}'},
            "arguments",
            "nest more than 32 levels deep",
        ),
        (
            {"task": "dash.add", "arguments": '{"a": ' + "[" * 40 + "]" * 40 + ', "b": 2}'},
            "arguments",
            "nest more than 32 levels deep",
        ),
    ],
)
def test_enqueue_form_validates_like_enqueue(csrf_client, operator, redis_client, data, field, message):
    csrf_client.force_login(operator)
    response = post(csrf_client, ENQUEUE, ENQUEUE, **data)
    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors[field]), response.context["form"].errors
    assert queue_state.job_keys() == []


def test_enqueue_form_offers_the_configured_queues(csrf_client, operator, redis_client, settings):
    settings.SAQ = {**settings.SAQ, "QUEUES": {**settings.SAQ["QUEUES"], "emails": {"URL": settings.REDIS_URL}}}
    csrf_client.force_login(operator)
    response = post(csrf_client, ENQUEUE, ENQUEUE, task="dash.add", arguments='{"a": 1, "b": 2}', queue="emails")
    assert response.status_code == 302
    assert queue_state.count("queued", queue="emails") == 1

    response = post(csrf_client, ENQUEUE, ENQUEUE, task="dash.add", arguments='{"a": 1, "b": 2}', queue="x")
    assert "Select a valid choice" in response.context["form"].errors["queue"][0]
