from collections.abc import Iterator

import pytest

from .server import FeedServer, serving


@pytest.fixture(scope="session")
def _feed_server() -> Iterator[FeedServer]:
    with serving() as server:
        yield server


@pytest.fixture
def server(_feed_server: FeedServer) -> Iterator[FeedServer]:
    _feed_server.reset()
    yield _feed_server
    _feed_server.reset()


@pytest.fixture(autouse=True)
def _loopback_feeds(settings):
    """The feed servers of these tests listen on loopback, which production refuses (the SSRF
    tests turn this back off). Subprocess workers get it from FEEDS_ALLOW_PRIVATE_NETWORKS.

    Refreshes store on the test's own connection: a connection of their own (the store pool,
    tested by test_store_pool.py and every worker test) would not see the test's transaction.
    """
    settings.FEEDS = {**settings.FEEDS, "ALLOW_PRIVATE_NETWORKS": True, "STORE_CONNECTIONS": 1}


@pytest.fixture
def feed_settings(settings):
    """Small limits so timeouts and caps are hit quickly."""
    settings.FEEDS = {**settings.FEEDS, "CONNECT_TIMEOUT": 2, "READ_TIMEOUT": 2, "DEADLINE": 5, "MAX_CONCURRENCY": 10}
    return settings


@pytest.fixture
def clean_queue(redis_db):
    return redis_db
