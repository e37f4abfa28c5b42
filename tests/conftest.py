import os

import pytest
from django.conf import settings as django_settings
from django.db import connection

from tasks_app import conf, queue_urls, redis_urls

# tasks_app's own fixtures for testing code that enqueues: captured_jobs, immediate_jobs.
pytest_plugins = ["tasks_app.testing"]


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
