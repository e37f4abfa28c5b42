import os

import pytest
from django.conf import settings as django_settings
from django.db import connection

from tasks_app import conf, queue_urls, redis_urls

from .redis_lease import set_by_hand

# tasks_app's own fixtures for testing code that enqueues: captured_jobs, immediate_jobs.
pytest_plugins = ["tasks_app.testing"]

# pytest-xdist workers for -n auto (pyproject's addopts): one more than the CPUs this process may use,
# since most tests wait on subprocesses, Redis and PostgreSQL rather than compute (on 2 cores, the
# suite took 1,064 s in one process, 493 s on 2 workers, 365 s on 3). At most 4: each worker leases
# a Redis database of the fifteen (tests/redis_lease.py), and two runs at once must still find some.
MAX_AUTO_WORKERS = 4


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config) -> int | None:
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own variable: xdist reads it
    if set_by_hand():
        return 1  # a database set by hand is one run's: one worker
    return min(len(os.sched_getaffinity(0)) + 1, MAX_AUTO_WORKERS)


def pytest_configure(config) -> None:
    workers = getattr(config.option, "numprocesses", None) or 0
    if set_by_hand() and workers > 1 and not os.environ.get("PYTEST_XDIST_WORKER"):
        raise pytest.UsageError(
            f"TEST_REDIS_URL names one Redis database, and pytest-xdist's {workers} workers would share it "
            "and take each other's jobs. Unset TEST_REDIS_URL (each worker then leases a database of its "
            "own from 1 to 15), or run with -n 0."
        )


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.com", "password")


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def redis_db():
    """The tests' own Redis database (TEST_REDIS_URL, or the database this run leased), empty before and after."""
    client = redis_urls.sync_client(queue_urls.split_url_options(django_settings.SAQ["QUEUES"]["default"]["URL"])[0])
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


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
