"""With Redis down the dashboard says so, clearly, and never answers with a 500."""

import html

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.test import override_settings
from django.urls import reverse

from tasks_app import enqueue

pytestmark = pytest.mark.django_db  # no worker here: the test transaction is enough

INDEX = reverse("admin:tasks_app_taskqueue_changelist")


def page(response):
    return html.unescape(response.content.decode())


@pytest.fixture
def redis_down(closed_port):
    """The "emails" queue's Redis is down; "default" still works."""
    url = f"redis://:secret@127.0.0.1:{closed_port}/0"
    saq = {**settings.SAQ, "QUEUES": {**settings.SAQ["QUEUES"], "emails": {"URL": url}}, "API_TOKEN": "t0ken"}
    with override_settings(SAQ=saq):
        yield f"Cannot reach Redis for queue 'emails' at redis://:***@127.0.0.1:{closed_port}/0: "


def test_index_names_the_unreachable_queue(admin_client, redis_down, closed_port):
    enqueue("dash.add", a=1, b=2)
    response = admin_client.get(INDEX)
    assert response.status_code == 200
    assert redis_down in page(response)
    assert 'Start Redis, or fix SAQ["QUEUES"]["emails"]["URL"].' in page(response)
    # redis-py's reason ends with a period, which the message drops before its own ").".
    assert f"Connect call failed ('127.0.0.1', {closed_port}). Start Redis" in page(response)
    assert "secret" not in page(response)  # the password is not shown
    default, emails = response.context["queues"]
    assert (default.queued, default.error) == (1, None)  # the queue whose Redis is up still shows
    assert emails.error.startswith(redis_down)


def test_the_banner_names_the_variable_that_feeds_the_setting(admin_client, redis_down):
    saq = {**settings.SAQ, "SETTING_SOURCES": {"QUEUES.emails.URL": "EMAILS_REDIS_URL"}}
    with override_settings(SAQ=saq):
        response = admin_client.get(INDEX)
    assert response.status_code == 200
    fix = 'Start Redis, or fix SAQ["QUEUES"]["emails"]["URL"] (set from the environment variable EMAILS_REDIS_URL).'
    assert fix in page(response)


def test_jobs_page(admin_client, redis_down):
    response = admin_client.get(reverse("admin:tasks_app_dashboard_jobs"), {"queue": "emails"})
    assert response.status_code == 200
    assert redis_down in page(response)


def test_job_page(admin_client, redis_down):
    response = admin_client.get(reverse("admin:tasks_app_dashboard_job", args=["emails", "k"]))
    assert response.status_code == 503
    assert redis_down in page(response)


@pytest.mark.parametrize("action", ["retry", "abort"])
def test_actions(admin_client, redis_down, action):
    response = admin_client.post(reverse(f"admin:tasks_app_dashboard_{action}"), {"queue": "emails", "key": "k"})
    assert response.status_code == 302
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith(f"Nothing changed: {redis_down}")


def test_enqueue_form(admin_client, redis_down):
    response = admin_client.post(
        reverse("admin:tasks_app_taskqueue_add"),
        {"task": "dash.add", "arguments": '{"a": 1, "b": 2}', "queue": "emails"},
    )
    assert response.status_code == 200
    assert f"Nothing was enqueued: {redis_down}" in response.context["form"].non_field_errors()[0]


def test_stats_endpoint_reports_503(client, redis_down):
    response = client.get(reverse("admin:tasks_app_dashboard_stats"), headers={"Authorization": "Bearer t0ken"})
    assert response.status_code == 503
    queues = {q["name"]: q for q in response.json()["queues"]}
    assert queues["default"]["error"] is None
    assert queues["emails"]["error"].startswith(redis_down)


def test_every_queue_down(admin_client, closed_port):
    saq = {**settings.SAQ, "QUEUES": {"default": {"URL": f"redis://127.0.0.1:{closed_port}/0"}}}
    with override_settings(SAQ=saq):
        response = admin_client.get(INDEX)
    assert response.status_code == 200
    assert "Cannot reach Redis for queue 'default'" in page(response) and "Start Redis, or fix" in page(response)


def test_counts_and_lists_say_unknown_rather_than_zero(admin_client, closed_port):
    saq = {**settings.SAQ, "QUEUES": {"default": {"URL": f"redis://127.0.0.1:{closed_port}/0"}}}
    with override_settings(SAQ=saq):
        response = admin_client.get(INDEX)
    text = page(response)
    assert "unknown (Redis unreachable)" in text
    assert "Unknown: Redis could not be read, so live workers cannot be listed." in text
    assert "Unknown: Redis could not be read, so recent failures cannot be listed." in text
    assert "No live workers" not in text and "No failed jobs are kept in Redis" not in text
    (queue,) = response.context["queues"]
    assert (queue.queued, queue.failed, queue.workers) == (None, None, None)


def test_stats_json_gives_null_counts_for_an_unreachable_queue(client, redis_down):
    response = client.get(reverse("admin:tasks_app_dashboard_stats"), headers={"Authorization": "Bearer t0ken"})
    body = response.json()
    emails = next(q for q in body["queues"] if q["name"] == "emails")
    assert [emails[k] for k in ("queued", "active", "scheduled", "complete", "failed", "aborted", "workers")] == [
        None
    ] * 7
    assert body["workers"] is None  # a list of only the reachable queues' workers would be a guess
    assert "secret" not in response.content.decode()


def test_a_password_in_the_query_string_is_hidden_too(admin_client, client, closed_port):
    url = f"redis://127.0.0.1:{closed_port}/0?password=hunter2"
    saq = {**settings.SAQ, "QUEUES": {"default": {"URL": url}}, "API_TOKEN": "t0ken"}
    with override_settings(SAQ=saq):
        dashboard = page(admin_client.get(INDEX))
        stats = client.get(reverse("admin:tasks_app_dashboard_stats"), headers={"Authorization": "Bearer t0ken"})
    assert "hunter2" not in dashboard and "password=***" in dashboard
    assert "hunter2" not in stats.content.decode()
