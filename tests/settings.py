"""Test settings: the site's settings on PostgreSQL, with a Redis database of the tests' own.

TEST_DATABASE_URL picks the PostgreSQL server (pytest-django creates test_<name>);
TEST_REDIS_URL picks the Redis database; unset, the run leases a free one from 1 to 15
(tests/redis_lease.py), so tests never touch a developer's queue on db 0 nor another run's.
"""

import json
import os

from pydotorg.env import database, url
from pydotorg.settings import *  # noqa: F403
from pydotorg.settings import SAQ

from .redis_lease import leased_redis_url

DATABASES = {"default": database("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")}
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

REDIS_URL = url("TEST_REDIS_URL", leased_redis_url(), {"redis", "rediss", "unix", "redis+sentinel"})
SAQ = {
    **SAQ,
    "QUEUES": {"default": {"URL": REDIS_URL, "CONCURRENCY": 10}},
    # Here the queue's URL and the database come from the tests' own variables; the site's names the rest.
    "SETTING_SOURCES": {
        **SAQ["SETTING_SOURCES"],
        "QUEUES.default.URL": "TEST_REDIS_URL",
        "DATABASES.default": "TEST_DATABASE_URL",
    },
    # Short timers so sweeps and outbox drains happen within a test's patience.
    "TIMERS": {"schedule": 1, "worker_info": 2, "sweep": 1, "abort": 1, "outbox": 1},
    # Subprocess tests adjust the worker (grace period, heartbeat...) through TEST_SAQ, a JSON object.
    **json.loads(os.environ.get("TEST_SAQ", "{}")),
}
INSTALLED_APPS = [*INSTALLED_APPS, "tests.sampleapp"]

MEILISEARCH_URL = os.environ.get("MEILISEARCH_URL") or None
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Long and varied enough for the site to serve with DEBUG off (tests/browser/ does), public like any test key.
SECRET_KEY = "tests-only-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGH"
# Static files as in development (pytest-django turns DEBUG off): from the apps, unhashed, with
# no collectstatic. Tests of the production storage (tests/site/test_static.py, tests/browser/)
# collect into a directory of their own.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
