import pytest
from django.test import override_settings

from .fixtures import redis_client, work, worker_in_thread  # noqa: F401

SAQ_TASKS = {
    "default": {
        "BACKEND": "tasks_app.backends.SAQBackend",
        "QUEUES": ["default"],
        # As with Django's own backends, a failing task is attempted once unless a test asks for retries.
        "OPTIONS": {"retries": 0},
    }
}


@pytest.fixture(autouse=True)
def saq_tasks():
    with override_settings(TASKS=SAQ_TASKS):
        yield
