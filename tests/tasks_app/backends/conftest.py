import io

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from tasks_app.management.commands.runworker import Command

SAQ_TASKS = {
    "default": {
        "BACKEND": "tasks_app.backends.SAQBackend",
        "QUEUES": ["default"],
        # As with Django's own backends, a failing task is attempted once unless a test asks for retries.
        "OPTIONS": {"retries": 0},
    }
}


@pytest.fixture(autouse=True)
def redis_client():
    """This test's Redis database (TEST_REDIS_URL), empty before and after."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(autouse=True)
def saq_tasks():
    with override_settings(TASKS=SAQ_TASKS):
        yield


@pytest.fixture
def work():
    """Run the real worker (runworker --burst) in this process until the queues are empty."""

    def run(*args: str) -> str:
        out = io.StringIO()
        command = Command(stdout=out, stderr=out)
        command.verbosity = 0  # runworker's banner reads self.verbosity, which call_command does not set
        call_command(command, "--burst", *args)
        return out.getvalue()

    return run
