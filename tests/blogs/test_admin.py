"""The feed admin: the "Refresh now" action and the health columns."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tasks_app.enqueueing.connections import background, disconnect_all

from .helpers import make_feed

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:blogs_feed_changelist"


def refresh_now(admin_client, *feeds):
    return admin_client.post(
        reverse(CHANGELIST),
        {"action": "refresh_now", "_selected_action": [f.pk for f in feeds]},
        follow=True,
    )


def test_refresh_now_enqueues_refresh_single_feed(admin_client, captured_jobs):
    feed = make_feed("http://127.0.0.1:9/a.xml", name="Alpha")
    other = make_feed("http://127.0.0.1:9/b.xml", name="Beta")

    response = refresh_now(admin_client, feed, other)

    assert response.status_code == 200
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("Queued a refresh of 2 feed(s): Alpha, Beta.")
    assert [(job.task, job.kwargs, job.key, job.queue) for job in captured_jobs] == [
        ("refresh_single_feed", {"feed_url": "http://127.0.0.1:9/a.xml"}, f"refresh_single_feed:{feed.pk}", "default"),
        ("refresh_single_feed", {"feed_url": "http://127.0.0.1:9/b.xml"}, f"refresh_single_feed:{other.pk}", "default"),
    ]


def test_refresh_now_twice_queues_one_job(admin_client, captured_jobs):
    feed = make_feed("http://127.0.0.1:9/a.xml", name="Alpha")
    refresh_now(admin_client, feed)
    refresh_now(admin_client, feed)
    assert len(captured_jobs) == 1  # the per-feed key deduplicates while the first is pending


@pytest.fixture
def redis_down(settings):
    """Point the queue at a port where nothing listens (and drop the queue cached for the old URL)."""
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": "redis://127.0.0.1:9/0"}}}
    background.run(disconnect_all())
    yield
    background.run(disconnect_all())


def test_refresh_now_with_redis_down_shows_an_error_not_a_500(admin_client, redis_down):
    feed = make_feed("http://127.0.0.1:9/a.xml", name="Alpha")

    response = refresh_now(admin_client, feed)

    assert response.status_code == 200
    (message,) = list(get_messages(response.wsgi_request))
    assert message.level_tag == "error"
    assert "Could not queue the refresh: the task queue (Redis) is unreachable" in str(message)


def test_changelist_shows_last_fetched_error_and_failures(admin_client):
    make_feed("http://127.0.0.1:9/a.xml", name="Alpha", last_error="x" * 300 + " tail", consecutive_failures=4)
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    for column in ("column-last_fetched", "column-short_last_error", "column-consecutive_failures"):
        assert column in html
    assert "x" * 100 in html and " tail" not in html  # long errors are shortened in the list
    assert '<td class="field-consecutive_failures">4</td>' in html
