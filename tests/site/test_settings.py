"""Settings: each bad value is an error that names its variable; the site will not serve on a public key."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from pydotorg import env
from tasks_app.queue_urls import split_concurrency

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


# Pieces of the password, none of which may show in any message.
SECRET_PIECES = ("Pw0rdZ", "Qk7x")
BAD_URLS = [
    ("redis://:Pw0rdZQk7x@127.0.0.1:63x9/5", "its port is not a number"),
    ("redis://:Pw0rdZQk7x@127.0.0.1:99999/5", "its port is not from 0 to 65535"),
    ("redis://:Pw0rdZ#Qk7x@127.0.0.1:6379/5", "percent-encoded (%3F, %23)"),
    ("redis://:Pw0rdZ?Qk7x@127.0.0.1:6379/5", "percent-encoded (%3F, %23)"),
    ("redis://:6379#Pw0rdZQk7x@127.0.0.1:6379/5", "percent-encoded (%3F, %23)"),  # would parse, wrongly
    ("redis://:Pw0rdZ/Qk7x@127.0.0.1:6379/5", "percent-encoded"),
    ("redis://:Pw0rdZQk7x@[::1/5", "unmatched '['"),
    ("redis//:Pw0rdZQk7x@127.0.0.1/5", "it has no scheme"),
]


@pytest.mark.parametrize(("value", "problem"), BAD_URLS)
def test_a_bad_url_is_described_without_its_password(monkeypatch, value, problem):
    monkeypatch.setenv("REDIS_URL", value)
    with pytest.raises(ImproperlyConfigured) as caught:
        env.url("REDIS_URL", None, {"redis"})
    message = str(caught.value)
    assert message.startswith("REDIS_URL ") and problem in message
    assert not any(piece in message for piece in SECRET_PIECES), message
    chained = caught.value.__cause__ or (None if caught.value.__suppress_context__ else caught.value.__context__)
    assert chained is None  # a traceback would show urllib's message, which may quote the secret


def test_an_unsupported_scheme_shows_the_url_redacted(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mongodb://u:Pw0rdZQk7x@db/site?password=Pw0rdZQk7x")
    with pytest.raises(ImproperlyConfigured) as caught:
        env.database("DATABASE_URL", "sqlite:///x")
    assert "DATABASE_URL='mongodb://u:***@db/site?password=***' has an unsupported scheme" in str(caught.value)


def test_a_sqlalchemy_driver_in_the_scheme_is_told_to_go(monkeypatch):
    # The older SAQ document's DATABASE_URL=postgresql+asyncpg://...: one scheme to use, not the list of 22.
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://user:Pw0rdZQk7x@localhost:5432/pydotorg")
    with pytest.raises(ImproperlyConfigured) as caught:
        env.database("DATABASE_URL", "sqlite:///x")
    assert str(caught.value).endswith(
        "unsupported scheme 'postgresql+asyncpg'; expected postgresql:// (Django chooses the driver itself: "
        "leave out '+asyncpg')."
    )


def test_a_query_with_an_at_sign_is_not_mistaken_for_a_password(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db:5432/site?options=a@b")
    assert env.database("DATABASE_URL", "sqlite:///x")["PASSWORD"] == "p"
    monkeypatch.setenv("REDIS_URL", "redis://db:6379/0?password=a@b")
    assert env.url("REDIS_URL", None, {"redis"}) == "redis://db:6379/0?password=a@b"


def test_a_slash_in_a_database_password_is_caught_not_read_as_its_host(monkeypatch):
    # Parsed, it would connect to host "Pw0rdZ" and database "Qk7x@db:5432/site", and the messages of a
    # failure to connect would show both pieces of the password.
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@Pw0rdZ/Qk7x@db:5432/site")
    with pytest.raises(ImproperlyConfigured) as caught:
        env.database("DATABASE_URL", "sqlite:///x")
    message = str(caught.value)
    assert message.startswith("DATABASE_URL is not a valid URL: its database name has an '@'")
    assert "percent-encoded (%2F, %3F, %23, %40)" in message
    assert not any(piece in message for piece in SECRET_PIECES), message


def test_a_percent_encoded_password_is_accepted(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:Pw0rdZ%23Qk7x%3F@db:5432/site")
    assert env.database("DATABASE_URL", "sqlite:///x")["PASSWORD"] == "Pw0rdZ#Qk7x?"


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


@pytest.mark.parametrize("value", ["Mars/Base", "../etc/passwd", "UTC+2"])
def test_a_time_zone_python_does_not_know_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("TIME_ZONE", value)
    with pytest.raises(ImproperlyConfigured, match=r"TIME_ZONE=.* is not a time zone name: use an IANA name"):
        env.time_zone("TIME_ZONE", "UTC")


@pytest.mark.parametrize(("value", "read"), [("", "UTC"), (" Europe/Berlin ", "Europe/Berlin")])
def test_a_blank_or_padded_time_zone_is_read_as_meant(monkeypatch, value, read):
    monkeypatch.setenv("TIME_ZONE", value)
    assert env.time_zone("TIME_ZONE", "UTC") == read


def run_check(**environ):
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "pydotorg.settings", **environ}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_site_settings_reject_bad_redis_url_without_traceback():
    result = run_check(REDIS_URL="redis://localhost:6379/0?concurrency=lots")
    assert result.returncode == 2
    assert "REDIS_URL" in result.stderr and "concurrency" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDIS_URL", "redis://:Pw0rdZQk7x@127.0.0.1:63x9/5"),
        ("REDIS_URL", "redis://:Pw0rdZ#Qk7x@127.0.0.1:6379/5"),
        ("REDIS_URL", "http://:Pw0rdZQk7x@127.0.0.1:6379/5"),
        ("DATABASE_URL", "postgres://site:Pw0rdZ?Qk7x@db:5432/site"),
        ("DATABASE_URL", "postgres://site:Pw0rdZQk7x@db:54x2/site"),
        ("DATABASE_URL", "postgres://site:p@Pw0rdZ/Qk7x@db:5432/site"),
    ],
)
def test_a_bad_url_stops_manage_py_with_one_line_and_no_password(variable, value):
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "pydotorg.settings", variable: value}
    for command in (["check"], ["pausequeue", "default"]):  # a Django command, and one of an app's
        result = subprocess.run(
            [sys.executable, "manage.py", *command], cwd=ROOT, env=environment, capture_output=True, text=True
        )
        assert result.returncode == 2, result.stderr
        assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"ImproperlyConfigured: {variable}")
        assert not any(piece in result.stderr for piece in SECRET_PIECES), result.stderr


def test_with_traceback_a_settings_error_keeps_its_traceback():
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "pydotorg.settings", "REDIS_URL": "redis://h:63x9/0"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--traceback"], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 1 and "Traceback" in result.stderr


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


# --- serving with DEBUG off -------------------------------------------------------------------


def site_env(tmp_path, **environ) -> dict:
    """A production-like environment: DEBUG off, nothing else configured, a database of the test's own."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pydotorg.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "STATIC_ROOT": str(tmp_path / "static"),
        "DEBUG": "false",
        "SECRET_KEY": "",  # set and empty: a developer's .env cannot fill it in
        **environ,
    }


def run(args: list[str], env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("module", ["pydotorg.wsgi", "pydotorg.asgi"])
@pytest.mark.parametrize("key", ["", "insecure-dev-key-set-SECRET_KEY-in-production"])
def test_the_application_will_not_serve_on_the_public_key(tmp_path, module, key):
    result = run(["-c", f"import {module}"], site_env(tmp_path, SECRET_KEY=key))
    assert result.returncode != 0
    assert "ImproperlyConfigured: The site will not serve requests with DEBUG off" in result.stderr
    assert "- SECRET_KEY is not set (or is the development key" in result.stderr


def test_runserver_refuses_with_a_message_not_a_traceback(tmp_path):
    result = run(["manage.py", "runserver", "--noreload", "127.0.0.1:9"], site_env(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("CommandError: The site will not serve requests with DEBUG off:")
    assert "SECRET_KEY" in result.stderr and "collectstatic" in result.stderr and "Traceback" not in result.stderr


def test_management_commands_need_no_configuration(tmp_path):
    env = site_env(tmp_path)
    for command in (["migrate", "-v", "0"], ["check"], ["collectstatic", "--noinput", "-v", "0"]):
        result = run(["manage.py", *command], env)
        assert result.returncode == 0, (command, result.stderr)


GOOD_KEY = "a-Long_random-value-0123456789-abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize(
    ("key", "says"),
    [
        (" ", "SECRET_KEY is not set (or is the development key"),
        ("insecure-dev-key-set-SECRET_KEY-in-production ", "SECRET_KEY is not set (or is the development key"),
        (f" {GOOD_KEY}", "SECRET_KEY starts or ends with whitespace"),
        ("k" * 60, "SECRET_KEY is too simple"),
        ("short-but-varied-01", "SECRET_KEY is too simple"),
        ("django-insecure-" + GOOD_KEY, "SECRET_KEY is too simple"),
    ],
)
def test_a_blank_padded_or_simple_key_is_refused_like_the_development_key(tmp_path, key, says):
    result = run(["-c", "import pydotorg.wsgi"], site_env(tmp_path, SECRET_KEY=key))
    assert result.returncode != 0
    assert "ImproperlyConfigured: The site will not serve requests with DEBUG off" in result.stderr
    assert f"- {says}" in result.stderr
    assert not key.strip() or key.strip() not in result.stderr  # the key itself is never printed


def test_the_application_serves_with_a_secret_key_and_collected_static_files(tmp_path):
    env = site_env(tmp_path, SECRET_KEY=GOOD_KEY)
    assert run(["manage.py", "collectstatic", "--noinput", "-v", "0"], env).returncode == 0
    result = run(["-c", "import pydotorg.wsgi, pydotorg.asgi; print('ready')"], env)
    assert (result.returncode, result.stdout.strip()) == (0, "ready"), result.stderr


def test_without_collectstatic_the_application_says_what_to_run(tmp_path):
    result = run(["-c", "import pydotorg.wsgi"], site_env(tmp_path, SECRET_KEY=GOOD_KEY))
    assert result.returncode != 0
    assert "Static files have not been collected" in result.stderr and "manage.py collectstatic" in result.stderr
    assert "SECRET_KEY" not in result.stderr


def test_debug_serves_without_a_key_or_collectstatic(tmp_path):
    result = run(["-c", "import pydotorg.wsgi; print('ready')"], site_env(tmp_path, DEBUG="true"))
    assert (result.returncode, result.stdout.strip()) == (0, "ready"), result.stderr


def production_section() -> str:
    operating = (ROOT / "docs" / "operating.md").read_text()
    start = operating.index("## Production")
    return operating[start : operating.index("\n## ", start + 1)]


def deploy_warnings(env: dict) -> set[str]:
    result = run(["manage.py", "check", "--deploy"], env)
    return set(re.findall(r"\(([a-z_]+\.[EW]\d+)\)", result.stdout + result.stderr))


def test_check_deploy_warns_only_of_what_the_readme_explains(tmp_path):
    explained = set(re.findall(r"`([a-z_]+\.[EW]\d+)`", production_section()))
    unconfigured = deploy_warnings(site_env(tmp_path))
    assert {"pydotorg.E001", "pydotorg.E002", "security.W009"} <= unconfigured
    configured = site_env(
        tmp_path, SECRET_KEY="k" * 20 + "abcdefghijklmnopqrstuvwxyz0123", HTTPS="true", SECURE_HSTS_SECONDS="31536000"
    )
    run(["manage.py", "collectstatic", "--noinput", "-v", "0"], configured)
    recommended = deploy_warnings(configured)
    assert "pydotorg.E001" not in recommended and "security.W008" not in recommended
    assert unconfigured | recommended <= explained, (unconfigured | recommended) - explained


def test_every_setting_read_from_the_environment_is_documented():
    source = (ROOT / "pydotorg" / "settings.py").read_text()
    variables = set(re.findall(r"environment\.[a-z_.]+\(\s*\"([A-Z_]+)\"", source))
    assert {"SECRET_KEY", "DEBUG", "HTTPS", "STATIC_ROOT", "FEEDS_USER_AGENT"} <= variables
    example = (ROOT / ".env.example").read_text()
    docs = "".join(path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))])
    assert not {v for v in variables if f"{v}=" not in example}, "missing from .env.example"
    assert not {v for v in variables if v not in docs and f"{v.split('_')[0]}_*" not in docs}, "missing from the docs"


def test_log_format_json_gives_one_json_object_per_line_with_the_job_fields(tmp_path):
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('tasks_app.worker').warning('job task=%s outcome=%s', 'greet', 'retrying', "
        "extra={'task': 'greet', 'job_key': 'k1', 'attempt': 2, 'outcome': 'retrying'})"
    )
    env = {**site_env(tmp_path), "LOG_FORMAT": "json"}
    result = run(["-c", code], env)
    (line,) = result.stderr.strip().splitlines()
    record = json.loads(line)
    assert record["message"] == "job task=greet outcome=retrying" and record["level"] == "WARNING"
    assert (record["task"], record["job_key"], record["attempt"], record["outcome"]) == ("greet", "k1", 2, "retrying")
    text = run(["-c", code], site_env(tmp_path)).stderr.strip()
    assert text.endswith("WARNING tasks_app.worker job task=greet outcome=retrying")
    bad = run(["-c", "import django; django.setup()"], {**site_env(tmp_path), "LOG_FORMAT": "yaml"})
    assert "LOG_FORMAT='yaml' must be one of: text, json." in bad.stderr


@pytest.mark.parametrize("command", [["migrate"], ["runworker", "--burst"], ["check"]])
def test_a_sqlite_file_that_cannot_be_opened_is_one_line_naming_database_url(tmp_path, command):
    env = {**site_env(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"}
    result = run(["manage.py", *command], env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"The SQLite database {tmp_path}/missing/dir/db.sqlite3 (DATABASES['default'], from DATABASE_URL)" in (
        result.stderr
    )
    assert f"the directory {tmp_path}/missing/dir does not exist" in result.stderr


@pytest.mark.parametrize(
    ("address", "act"),
    [
        ("127.0.0.1:1/x", "Start it"),
        ("127.0.0.1:5432/no_such_database_of_the_tests", "Create it"),
        ("no.such.host.invalid:5432/x", "Check its host name"),
        ("127.0.0.1:5432/postgres", "Check its user name and password"),  # as a role that does not exist
    ],
)
def test_an_unreachable_database_is_one_line_naming_database_url_whatever_the_command(settings, address, act):
    # Django's own commands (migrate) and the site's (reindex_search) alike: manage.py says it, not a traceback.
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pydotorg.settings",
        "DATABASE_URL": f"postgres://{'nosuchrole' if act.startswith('Check its user') else 'postgres'}@{address}",
        "REDIS_URL": settings.SAQ["QUEUES"]["default"]["URL"],  # the run's own (nothing is written there)
    }
    for command in (["migrate"], ["reindex_search", "page"]):
        result = run(["manage.py", *command], environment)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("Cannot reach the database 'default' (postgresql ")
        fix = 'DATABASES["default"] (set from the environment variable DATABASE_URL).'
        assert f"{act}, or fix {fix}" in result.stderr
