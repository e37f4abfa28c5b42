"""The dashboard shows a job's progress: the fraction and the message ``areport_progress`` stored."""

import pytest
from django.urls import reverse

from tasks_app import enqueue

pytestmark = pytest.mark.django_db(transaction=True)

JOBS = reverse("admin:tasks_app_dashboard_jobs")


def test_the_job_page_and_the_list_show_progress(admin_client, redis_client, work):
    job = enqueue("fails_after_progress")
    work()
    page = admin_client.get(reverse("admin:tasks_app_dashboard_job", args=["default", job.key])).content.decode()
    assert '<td id="tq-progress"><progress max="100" value="30"></progress> 30% — 30 %</td>' in page
    listed = admin_client.get(JOBS, {"queue": "default"}).content.decode()
    assert '<td class="tq-num tq-progress" title="30 %">30%</td>' in listed


def test_a_job_with_no_progress_shows_none(admin_client, redis_client):
    job = enqueue("dash.add", a=1, b=2)
    page = admin_client.get(reverse("admin:tasks_app_dashboard_job", args=["default", job.key])).content.decode()
    assert "tq-progress" not in page
