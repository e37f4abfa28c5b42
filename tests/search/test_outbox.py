"""No lost update: a save made while Redis is down still succeeds, and its index update
is delivered by the worker once Redis is back. The Redis here is a redis-server this test
starts (and stops) itself, on a free loopback port, in a temporary directory."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis
from django.test import override_settings

from pydotorg.pages.models import Page
from tasks_app import queues
from tasks_app.models import OutboxEntry

from .conftest import run_worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("db_backend"),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path, settings):
    server = RedisServer(tmp_path)
    server.start()
    saq = {**settings.SAQ, "QUEUES": {"default": {"URL": server.url, "CONCURRENCY": 4}}}
    with override_settings(SAQ=saq):
        queues._per_loop.clear()  # cached queues point at the tests' usual Redis
        yield server
    server.stop()
    queues._per_loop.clear()


def test_a_save_while_redis_is_down_succeeds_and_is_indexed_when_it_is_back(own_redis, client):
    own_redis.stop()

    page = Page.objects.create(title="Outage notes", path="outage/", content="written while redis slept")
    page.refresh_from_db()  # the save committed
    (entry,) = OutboxEntry.objects.all()  # the job waits in the outbox
    assert entry.job_key == f"search:page:{page.pk}:0"
    assert entry.attempts == 1 and entry.last_error

    own_redis.start()  # same port, empty: Redis lost nothing because it never had the job
    # The worker's drain leaves rows younger than its grace period to their own on_commit delivery.
    time.sleep(max(0.0, entry.created.timestamp() + 2.1 - time.time()))
    run_worker()

    assert not OutboxEntry.objects.exists()
    body = client.get("/api/search/", {"q": "redis slept"}).json()
    assert [(h["type"], h["id"]) for h in body["hits"]] == [("page", page.pk)]
