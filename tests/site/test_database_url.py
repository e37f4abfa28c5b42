"""DATABASE_URL: the options django-environ lifts out of its query are checked like the variables they stand for."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from pydotorg import env

ROOT = Path(__file__).resolve().parents[2]
URL = "postgres://site:Pw0rdZQk7x@127.0.0.1:5432/site"


def manage(*args: str, **environ: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "pydotorg.settings", **environ}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True
    )


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "1e400", "9" * 400, "86401"])
def test_a_bad_conn_max_age_in_the_url_names_the_variable_and_the_option(monkeypatch, value):
    # ?conn_max_age=abc passed check, then every request was a 500 (TypeError: float + str).
    monkeypatch.setenv("DATABASE_URL", f"{URL}?conn_max_age={value}")
    with pytest.raises(ImproperlyConfigured) as caught:
        env.database("DATABASE_URL", "sqlite:///x")
    message = str(caught.value)
    assert message.startswith(f"DATABASE_URL: conn_max_age={value[:40]!r} must be a whole number from 0 to 86400")
    assert "Pw0rdZQk7x" not in message


@pytest.mark.parametrize(("query", "read"), [("conn_max_age=0", 0), ("CONN_MAX_AGE=600", 600)])
def test_a_whole_conn_max_age_in_the_url_is_read(monkeypatch, query, read):
    monkeypatch.setenv("DATABASE_URL", f"{URL}?{query}&sslmode=require")
    config = env.database("DATABASE_URL", "sqlite:///x")
    assert config["CONN_MAX_AGE"] == read and config["OPTIONS"] == {"sslmode": "require"}


@pytest.mark.parametrize(
    ("query", "setting", "read"),
    [("autocommit=false", "AUTOCOMMIT", False), ("atomic_requests=True", "ATOMIC_REQUESTS", True),
     ("disable_server_side_cursors=1", "DISABLE_SERVER_SIDE_CURSORS", True)],
)  # fmt: skip
def test_boolean_options_in_the_url_are_booleans(monkeypatch, query, setting, read):
    # django-environ read 'false' as the string 'false', which is true.
    monkeypatch.setenv("DATABASE_URL", f"{URL}?{query}")
    assert env.database("DATABASE_URL", "sqlite:///x")[setting] is read


def test_a_boolean_option_that_is_not_one_is_refused(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"{URL}?conn_health_checks=maybe")
    with pytest.raises(ImproperlyConfigured, match=r"^DATABASE_URL: conn_health_checks='maybe' is not a boolean"):
        env.database("DATABASE_URL", "sqlite:///x")


def test_manage_py_stops_on_a_bad_conn_max_age_with_one_line_and_no_password():
    result = manage("check", DATABASE_URL=f"{URL}?conn_max_age=abc")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("ImproperlyConfigured: DATABASE_URL: conn_max_age='abc' must be a whole number")
    assert "Pw0rdZQk7x" not in result.stderr


def test_conn_max_age_from_the_environment_has_the_same_bound():
    result = manage("check", CONN_MAX_AGE="9" * 400)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"CONN_MAX_AGE='{'9' * 37}" in result.stderr and "must be a whole number from 0 to 86400" in result.stderr


@pytest.mark.parametrize("scheme", ["mysql", "oracle", "postgis", "spatialite", "cockroachdb", "mssql"])
def test_a_scheme_whose_backend_this_project_cannot_load_is_refused(monkeypatch, scheme):
    # mysql:// passed the scheme check, then manage.py check ended in two tracebacks (Error loading MySQLdb).
    monkeypatch.setenv("DATABASE_URL", f"{scheme}://u:Pw0rdZQk7x@127.0.0.1/x")
    with pytest.raises(ImproperlyConfigured) as caught:
        env.database("DATABASE_URL", "sqlite:///x")
    assert str(caught.value) == (
        f"DATABASE_URL='{scheme}://u:***@127.0.0.1/x' has an unsupported scheme {scheme!r}; expected one of "
        "pgsql://, postgres://, postgresql://, psql://, sqlite://."
    )


def test_manage_py_refuses_mysql_in_one_line():
    result = manage("check", DATABASE_URL="mysql://u:Pw0rdZQk7x@127.0.0.1/x")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert "has an unsupported scheme 'mysql'; expected one of pgsql://" in result.stderr
    assert "Pw0rdZQk7x" not in result.stderr


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "pgsql", "psql"])
def test_every_postgres_spelling_is_accepted(monkeypatch, scheme):
    monkeypatch.setenv("DATABASE_URL", f"{scheme}://u:p@db:5432/site")
    assert env.database("DATABASE_URL", "sqlite:///x")["ENGINE"] == "django.db.backends.postgresql"
