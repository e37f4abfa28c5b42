import asyncio

import pytest
from django.conf import settings

from ..helpers import queue_opener


@pytest.fixture
def open_queue(redis_db):
    """An async context manager giving an AtomicRedisQueue on the tests' own (empty) Redis database."""
    return queue_opener(settings.SAQ["QUEUES"]["default"]["URL"])


def run(coro):
    return asyncio.run(coro)
