"""Settings parsing: each bad value is an error that names its variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from pydotorg import env
from tasks_app.conf import split_concurrency

ROOT = Path(__file__).resolve().parents[2]


def test_concurrency_is_split_off_redis_url():
    assert split_concurrency("redis://localhost:6379/0?concurrency=20") == ("redis://localhost:6379/0", 20)


def test_other_query_parameters_are_kept():
    url, concurrency = split_concurrency("redis://h:6379/1?concurrency=5&health_check_interval=10")
    assert (url, concurrency) == ("redis://h:6379/1?health_check_interval=10", 5)


def test_plain_redis_url_has_no_concurrency():
    assert split_concurrency("redis://localhost:6379/0") == ("redis://localhost:6379/0", None)


@pytest.mark.parametrize("bad", ["abc", "0", "-3", ""])
def test_bad_concurrency_names_the_variable(bad):
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        split_concurrency(f"redis://localhost/0?concurrency={bad}", setting="REDIS_URL")


def test_url_with_unknown_scheme_names_the_variable(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "http://localhost:6379")
    with pytest.raises(ImproperlyConfigured, match=r"REDIS_URL.*scheme"):
        env.url("REDIS_URL", None, {"redis", "rediss"})


def test_unparsable_url_names_the_variable(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://localhost:notaport/0")
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        env.url("REDIS_URL", None, {"redis"})


def test_bad_boolean_names_the_variable(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="DEBUG"):
        env.boolean("DEBUG", False)


def test_database_url_default_is_sqlite(monkeypatch):
    config = env.database("NO_SUCH_DATABASE_URL", "sqlite:///db.sqlite3")
    assert config["ENGINE"] == "django.db.backends.sqlite3"


def test_postgres_database_url(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.example:5433/site")
    config = env.database("DATABASE_URL", "sqlite:///x")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.example", 5433, "site")


def run_check(**environ):
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "pydotorg.settings", **environ}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_site_settings_reject_bad_redis_url_without_traceback():
    result = run_check(REDIS_URL="redis://localhost:6379/0?concurrency=lots")
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr and "concurrency" in result.stderr


def test_site_settings_apply_concurrency_from_redis_url():
    code = "from django.conf import settings; print(settings.SAQ['QUEUES']['default'])"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pydotorg.settings",
        "REDIS_URL": "redis://r:6379/2?concurrency=7",
    }
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "'URL': 'redis://r:6379/2'" in result.stdout and "'CONCURRENCY': 7" in result.stdout
