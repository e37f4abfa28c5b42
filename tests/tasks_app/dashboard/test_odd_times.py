"""Times out of any date's range: refused on the way in, shown as unknown on the way out."""

import asyncio

import pytest
from django.urls import reverse
from saq.job import Job

from tasks_app.engine import records
from tasks_app.enqueueing.connections import make_queue

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_time_no_date_can_hold_shows_as_unknown_not_a_500(admin_client, redis_db):
    """A record not written through tasks_app (build_job refuses such times) may hold one."""

    async def put():
        q = make_queue("default")
        try:
            await records.submit(q, Job("noop", key="far", scheduled=10**12))
            await records.submit(q, Job("noop", key="far2", scheduled=int(1e17)))
        finally:
            await q.disconnect()

    asyncio.run(put())
    admin_client.raise_request_exception = True
    for key in ("far", "far2"):
        page = admin_client.get(reverse("admin:tasks_app_dashboard_job", args=["default", key]))
        assert page.status_code == 200
        assert b"<th>Scheduled for</th><td>unknown</td>" in page.content
    for url in ["/admin/tasks_app/taskqueue/", "/admin/tasks_app/taskqueue/jobs/?status=scheduled"]:
        assert admin_client.get(url).status_code == 200


@pytest.mark.parametrize("delay", ["1e12", "inf", "nan"])
def test_the_enqueue_form_refuses_a_delay_no_date_can_hold(admin_client, redis_db, delay):
    page = admin_client.post(
        reverse("admin:tasks_app_taskqueue_add"), {"task": "noop", "arguments": "{}", "delay": delay}
    )
    assert page.status_code == 200 and page.context["form"].errors["delay"]
    assert redis_db.dbsize() == 0
