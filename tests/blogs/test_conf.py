"""The feed settings: one FEEDS dict, filled from the FEEDS_* variables, with defaults and checks in conf."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import Error, Warning

from pydotorg.blogs.checks import check_feed_settings
from pydotorg.blogs.conf import DEFAULTS, MAXIMUMS, MINIMUMS, cpu_count, feed_settings

ROOT = Path(__file__).resolve().parents[2]


def site_settings(**environ: str) -> subprocess.CompletedProcess:
    """Print the site's FEEDS (pydotorg.settings, not the tests') with ``environ`` set."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FEEDS_")}
    env.update(DJANGO_SETTINGS_MODULE="pydotorg.settings", **environ)
    code = "import django; django.setup(); from django.conf import settings; print(repr(settings.FEEDS))"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)


def test_the_site_passes_only_the_variables_that_are_set():
    result = site_settings(FEEDS_MAX_BYTES="2048", FEEDS_ALLOW_PRIVATE_NETWORKS="10.1.2.0/24, 10.9.0.0/16")
    assert result.returncode == 0, result.stderr
    assert eval(result.stdout) == {"MAX_BYTES": 2048, "ALLOW_PRIVATE_NETWORKS": ["10.1.2.0/24", "10.9.0.0/16"]}
    assert eval(site_settings().stdout) == {}  # the defaults are the conf module's


def test_a_variable_that_is_not_a_number_names_itself():
    result = site_settings(FEEDS_PARSE_TIMEOUT="soon")
    assert result.returncode != 0
    assert "FEEDS_PARSE_TIMEOUT='soon' must be a whole number" in result.stderr


def test_settings_import_no_app_module():
    code = (
        "import sys, pydotorg.settings; "
        "print(sorted(m for m in sys.modules if m.startswith(('pydotorg.', 'tasks_app.conf')) "
        "and m not in ('pydotorg.settings', 'pydotorg.env')))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pydotorg.settings"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr


def test_unset_keys_take_the_conf_defaults(settings):
    settings.FEEDS = {"MAX_BYTES": 4096}
    config = feed_settings()
    assert config.max_bytes == 4096
    assert config.max_redirects == DEFAULTS["MAX_REDIRECTS"] and config.user_agent == DEFAULTS["USER_AGENT"]


def test_a_value_below_its_bound_is_a_check_error_naming_both_spellings(settings):
    settings.FEEDS = {"MAX_CONCURRENCY": 0}
    (error,) = check_feed_settings(None)
    assert isinstance(error, Error) and error.id == "blogs.E001"
    assert error.msg.startswith("FEEDS_MAX_CONCURRENCY=0 must be a number >= 1 (default 20)")
    assert 'FEEDS["MAX_CONCURRENCY"] in settings.py' in error.msg


def test_an_unknown_key_is_a_check_error_with_the_nearest_key(settings):
    settings.FEEDS = {"MAX_BYTE": 10}
    (error,) = check_feed_settings(None)
    assert error.id == "blogs.E001"
    assert error.msg.startswith("FEEDS has an unknown key 'MAX_BYTE'; did you mean 'MAX_BYTES'?")


def test_feeds_must_be_a_dict(settings):
    settings.FEEDS = [("MAX_BYTES", 10)]
    (error,) = check_feed_settings(None)
    assert error.id == "blogs.E001" and error.msg.startswith("FEEDS=[('MAX_BYTES', 10)] must be a dict")


@pytest.mark.parametrize("name", ["FEEDS_MAX_BYTES", "FEEDS_DEADLINE"])
def test_a_flat_setting_left_in_settings_is_a_warning_not_silence(settings, name):
    settings.FEEDS = {}  # not this file's loopback allowance, which is a warning of its own
    setattr(settings, name, 1)
    (warning,) = check_feed_settings(None)
    assert isinstance(warning, Warning) and warning.id == "blogs.W002"
    assert warning.msg.startswith(f"{name} in settings.py is no longer read")


def test_parse_processes_has_an_upper_bound_of_4_per_cpu(settings):
    # The pool starts every process up front: FEEDS_PARSE_PROCESSES=100000 was a fork bomb at the first refresh.
    most = 4 * cpu_count()
    settings.FEEDS = {"PARSE_PROCESSES": most}
    assert check_feed_settings(None) == [] and feed_settings().parse_processes == most
    settings.FEEDS = {"PARSE_PROCESSES": 100000}
    (error,) = check_feed_settings(None)
    assert isinstance(error, Error) and error.id == "blogs.E001"
    assert error.msg.startswith(f"FEEDS_PARSE_PROCESSES=100000 must be a number <= {most} (4 per CPU here")
    assert "default 0" in error.msg and 'FEEDS["PARSE_PROCESSES"] in settings.py' in error.msg


HUGE = 99999999999999999999999


@pytest.mark.parametrize("key", [key for key in MINIMUMS if key != "PARSE_PROCESSES"])
def test_every_number_has_an_upper_bound(settings, key):
    # FEEDS_PARSE_CPU_SECONDS and FEEDS_PARSE_MEMORY_MB this large passed check, then every refresh
    # failed in setrlimit (OverflowError); a timeout of 400 digits failed in float().
    most, why = MAXIMUMS[key]
    settings.FEEDS = {key: most}
    assert check_feed_settings(None) == []
    for value in (HUGE, most + 1, float("nan")):
        settings.FEEDS = {key: value}
        (error,) = check_feed_settings(None)
        assert isinstance(error, Error) and error.id == "blogs.E001"
        assert error.msg.startswith(f"FEEDS_{key}={value!r} must be a number <= {most} ({why}; default ")


def test_a_huge_cpu_or_memory_limit_from_the_environment_fails_check():
    env = {key: value for key, value in os.environ.items() if not key.startswith("FEEDS_")}
    env.update(DJANGO_SETTINGS_MODULE="pydotorg.settings", FEEDS_PARSE_CPU_SECONDS=str(HUGE))
    env.update(FEEDS_PARSE_MEMORY_MB=str(HUGE))
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert f"(blogs.E001) FEEDS_PARSE_CPU_SECONDS={HUGE} must be a number <= 3600" in result.stderr
