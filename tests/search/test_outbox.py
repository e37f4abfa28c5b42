"""No lost update: a save made while Redis is down still succeeds, and its index update
is delivered by the worker once Redis is back. The Redis here is a redis-server this test
starts (and stops) itself, on a free loopback port, in a temporary directory."""

from __future__ import annotations

import pytest
from django.test import override_settings

from pydotorg.pages.models import Page
from tasks_app.models import OutboxEntry
from tests.redis_server import RedisServer

from .conftest import run_worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("db_backend"),
]


@pytest.fixture
def own_redis(tmp_path, settings):
    server = RedisServer(tmp_path, persistent=False)
    server.start()
    saq = {**settings.SAQ, "QUEUES": {"default": {"URL": server.url, "CONCURRENCY": 4}}}
    with override_settings(SAQ=saq):  # tasks_app drops its cached queues when SAQ changes
        yield server
    server.stop()


def test_a_save_while_redis_is_down_succeeds_and_is_indexed_when_it_is_back(own_redis, client):
    own_redis.stop()

    page = Page.objects.create(title="Outage notes", path="outage/", content="written while redis slept")
    page.refresh_from_db()  # the save committed
    (entry,) = OutboxEntry.objects.all()  # the job waits in the outbox
    assert entry.job_key == f"search:page:{page.pk}:0"
    assert entry.attempts == 1 and entry.last_error

    own_redis.start()  # same port, empty: Redis lost nothing because it never had the job
    run_worker()

    assert not OutboxEntry.objects.exists()
    body = client.get("/api/search/", {"q": "redis slept"}).json()
    assert [(h["type"], h["id"]) for h in body["hits"]] == [("page", page.pk)]
