import pytest
import redis
from django.conf import settings as django_settings

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
    client = redis.Redis.from_url(django_settings.SAQ["QUEUES"]["default"]["URL"])
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
