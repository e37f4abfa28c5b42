"""The dashboard lists the cron entries with their next run as Redis stores it, not as the settings say."""

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from tasks_app.process.runner import WorkerOptions, build_worker
from tests.tasks_app.engine.redis_clock import travel

pytestmark = pytest.mark.django_db(transaction=True)

INDEX = reverse("admin:tasks_app_taskqueue_changelist")
BERLIN = ZoneInfo("Europe/Berlin")


def tick() -> None:
    """One schedule tick of a worker built from the settings in force (what runworker does every second)."""

    async def schedule():
        worker = build_worker(WorkerOptions(queue="default", concurrency=1), drain_outbox=False)
        try:
            await worker.schedule(lock=0)
        finally:
            await worker.queue.disconnect()
            worker.pool.shutdown(wait=False)

    asyncio.run(schedule())


def rows(response) -> dict[str, object]:
    return {row.name: row for row in response.context["cron_entries"]}


def test_cron_entries_show_their_stored_next_run(clocked_default, admin_client, redis_db, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    settings.SAQ = {
        **settings.SAQ,
        "CRON_JOBS": [{"task": "count_notes", "cron": "0 14 * * *"}, {"task": "noop", "cron": "30 4 * * *"}],
    }
    with travel(datetime(2026, 6, 10, 10, 0, tzinfo=BERLIN)):  # Redis's clock too: cron's "now"
        tick()
        # A deploy changes an entry; until a worker ticks, Redis (and so the page) still holds the old run.
        settings.SAQ = {
            **settings.SAQ,
            "CRON_JOBS": [{"task": "count_notes", "cron": "0 16 * * *"}, {"task": "noop", "cron": "30 4 * * *"}],
        }
        before = admin_client.get(INDEX)
        tick()
        after = admin_client.get(INDEX)

    assert before.status_code == after.status_code == 200
    stale = rows(before)["count_notes"]
    assert stale.expression == "0 16 * * *" and stale.status == "queued"
    assert stale.due == datetime(2026, 6, 10, 14, 0, tzinfo=BERLIN)
    assert stale.stored_expression == "0 14 * * *"
    assert "stored for <code>0 14 * * *</code>" in before.content.decode()
    fresh = rows(after)["count_notes"]
    assert fresh.due == datetime(2026, 6, 10, 16, 0, tzinfo=BERLIN) and fresh.stored_expression is None
    assert rows(after)["noop"].due == datetime(2026, 6, 11, 4, 30, tzinfo=BERLIN)
    html = after.content.decode()
    assert 'id="tq-cron"' in html and "<code>0 16 * * *</code>" in html
    assert "2026-06-10 16:00 CEST" in html


def test_an_entry_with_no_stored_run_says_so(admin_client, redis_db, settings):
    settings.SAQ = {**settings.SAQ, "CRON_JOBS": [{"task": "noop", "cron": "0 3 * * *"}]}
    response = admin_client.get(INDEX)
    assert rows(response)["noop"].status is None
    assert "none stored: a running worker of queue default stores it" in response.content.decode()
