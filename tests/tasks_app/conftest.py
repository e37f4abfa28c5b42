import os

import pytest
from django.db import connection

from tasks_app import conf

from .backends.fixtures import worker_in_thread  # noqa: F401  (a fixture for any tasks_app test)
from .helpers import WorkerProcess


@pytest.fixture
def subprocess_env(transactional_db, redis_db):
    """Environment for manage.py subprocesses: the same test database and Redis database."""
    db = connection.settings_dict
    url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TEST_DATABASE_URL": url,
        "TEST_REDIS_URL": conf.queue_config("default").url,
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def start_worker(subprocess_env):
    started: list[WorkerProcess] = []

    def start(*args: str, env: dict | None = None) -> WorkerProcess:
        worker = WorkerProcess(*args, env=env or subprocess_env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()
