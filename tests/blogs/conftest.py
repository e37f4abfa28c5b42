import threading
from collections.abc import Iterator

import pytest

from .server import FeedServer


@pytest.fixture(scope="session")
def _feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    thread = threading.Thread(target=server.serve_forever, name="feed-test-server", daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def server(_feed_server: FeedServer) -> Iterator[FeedServer]:
    _feed_server.reset()
    yield _feed_server
    _feed_server.reset()


@pytest.fixture
def feed_settings(settings):
    """Small limits so timeouts and caps are hit quickly."""
    settings.FEEDS_CONNECT_TIMEOUT = 2
    settings.FEEDS_READ_TIMEOUT = 2
    settings.FEEDS_DEADLINE = 5
    settings.FEEDS_MAX_CONCURRENCY = 10
    return settings


@pytest.fixture
def clean_queue(redis_db):
    return redis_db
