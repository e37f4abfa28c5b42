"""What the dashboard shows: per-queue counts, live workers, recent and filtered jobs, a job's details."""

import os
import socket
import time

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from tasks_app import enqueue

pytestmark = pytest.mark.django_db(transaction=True)

INDEX = reverse("admin:tasks_app_taskqueue_changelist")
JOBS = reverse("admin:tasks_app_dashboard_jobs")


def job_url(key, queue="default"):
    return reverse("admin:tasks_app_dashboard_job", args=[queue, key])


def queue_row(response, name="default"):
    return next(q for q in response.context["queues"] if q.name == name)


def test_counts_per_queue(admin_client, work):
    enqueue("dash.add", a=1, b=2)
    enqueue("dash.fail", reason="bad feed")
    enqueue("dash.fail", reason="worse feed")
    work()  # one complete, two failed
    enqueue("dash.add", a=3, b=4)
    enqueue("dash.add", a=5, b=6)  # two queued
    enqueue("dash.add", a=7, b=8, delay=3600)  # one scheduled

    response = admin_client.get(INDEX)

    assert response.status_code == 200
    row = queue_row(response)
    assert (row.queued, row.active, row.scheduled, row.complete, row.failed, row.error) == (2, 0, 1, 1, 2, None)
    assert sorted(job.kwargs["reason"] for job in row.recent) == ["bad feed", "worse feed"]
    assert "bad feed" in response.text  # the recent failures table shows the error
    (connection,) = response.context["connections"]  # the Redis the queue writes to, reached directly
    assert (connection["sentinel"], connection["wait_replicas"], connection["error"]) == (False, 0, None)
    assert connection["primary"] and connection["primary"] in response.text and "directly" in response.text


def test_several_queues(admin_client, work):
    saq = {**settings.SAQ, "QUEUES": {**settings.SAQ["QUEUES"], "emails": {"URL": settings.REDIS_URL}}}
    with override_settings(SAQ=saq):
        enqueue("dash.add", a=1, b=2)
        emailed = enqueue("dash.add", queue="emails", a=3, b=4)
        response = admin_client.get(INDEX)
        assert [q.name for q in response.context["queues"]] == ["default", "emails"]
        assert (queue_row(response, "default").queued, queue_row(response, "emails").queued) == (1, 1)

        listed = admin_client.get(JOBS, {"queue": "emails"})
        assert [row["job"].key for row in listed.context["rows"]] == [emailed.key]
        assert admin_client.get(job_url(emailed.key, "emails")).status_code == 200
        assert admin_client.get(job_url(emailed.key, "nope")).status_code == 404


def test_live_workers(admin_client, worker_in_thread):
    enqueue("dash.add", a=1, b=2)
    enqueue("dash.fail")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the worker writes its stats every TIMERS["worker_info"] seconds
        workers = admin_client.get(INDEX).context["workers"]
        if workers and workers[0].processed == 2:
            break
        time.sleep(0.2)
    (row,) = workers
    assert row.id == worker_in_thread.id
    assert (row.queue, row.host, row.pid, row.concurrency) == ("default", socket.gethostname(), os.getpid(), 2)
    assert (row.processed, row.complete, row.failed) == (2, 1, 1)
    assert 0 <= row.uptime_s < 60
    assert abs(row.last_heartbeat.timestamp() - time.time()) < 10
    assert worker_in_thread.id in admin_client.get(INDEX).text


def test_jobs_filtered_by_status_and_task(admin_client, work):
    done = enqueue("dash.add", a=1, b=2)
    failed = enqueue("dash.fail")
    work()
    queued = enqueue("dash.add", a=2, b=2)
    scheduled = enqueue("dash.fail", delay=600)

    def keys(**filters):
        return {row["job"].key for row in admin_client.get(JOBS, filters).context["rows"]}

    assert keys() == {done.key, failed.key, queued.key, scheduled.key}
    assert keys(status="failed") == {failed.key}
    assert keys(status="complete") == {done.key}
    assert keys(status="queued") == {queued.key}
    assert keys(status="scheduled") == {scheduled.key}
    assert keys(task="dash.add") == {done.key, queued.key}
    assert keys(task="dash.fail", status="failed") == {failed.key}
    assert keys(task="nothing") == set()


def test_job_page_shows_arguments_attempts_timings_result(admin_client, work):
    job = enqueue("dash.add", a=20, b=22)
    work()
    response = admin_client.get(job_url(job.key))
    assert response.status_code == 200
    assert response.context["row"]["status"] == "complete"
    assert '"a": 20' in response.context["arguments"]
    assert response.context["result"] == "42"
    timings = dict(response.context["timings"])
    assert timings["Queued"] <= timings["Started"] <= timings["Completed"]
    assert "1 of 4" in response.text  # attempts of SAQ attempts (3 retries after the first)
    assert "Retry this job" not in response.text and "Abort this job" not in response.text


def test_job_page_shows_a_priority_other_than_0_and_the_count_includes_every_priority(admin_client):
    urgent = enqueue("dash.add", a=1, b=2, priority=30)
    plain = enqueue("dash.add", a=1, b=3)
    assert '<td id="tq-priority">30</td>' in admin_client.get(job_url(urgent.key)).text
    assert "tq-priority" not in admin_client.get(job_url(plain.key)).text
    index = admin_client.get(INDEX)
    assert index.context["queues"][0].queued == 2


def test_job_page_shows_error_and_traceback(admin_client, work):
    job = enqueue("dash.fail", reason="feed is gone")
    work()
    response = admin_client.get(job_url(job.key))
    assert response.context["row"]["status"] == "failed"
    assert "Traceback (most recent call last)" in response.text
    assert "ValueError: feed is gone" in response.text
    assert "Retry this job" in response.text


def test_missing_job_is_a_404_with_a_message(admin_client):
    response = admin_client.get(job_url("no-such-job"))
    assert response.status_code == 404
    assert "is not in queue default" in response.text
