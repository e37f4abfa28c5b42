"""The dashboard's last hour: per-minute counts the workers add to Redis, drawn as an accessible SVG."""

import pytest
from django.urls import reverse

from tasks_app import enqueue

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_chart_counts_what_a_real_worker_completed_failed_and_retried(client, viewer, work):
    enqueue("dash.add", a=1, b=2)
    enqueue("dash.add", a=2, b=3)
    enqueue("dash.fail")
    work()
    client.force_login(viewer)
    page = client.get(reverse("admin:tasks_app_taskqueue_changelist")).content.decode()
    assert 'role="img"' in page and "<script" not in page.split('id="tq-activity"')[1].split("</div>")[0]
    assert "Queue default: jobs completed, failed and retried per minute over the last hour" in page
    assert "2 completed, 1 failed, 0 retried" in page  # the <desc>, for a screen reader
    assert "<polyline" in page and page.count("<polyline") == 3
