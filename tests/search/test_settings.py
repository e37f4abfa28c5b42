"""The search settings: one module reads them (pydotorg/search/conf.py), with safe defaults; every bad
value is a system check error that names the setting, and the timeouts reach the Meilisearch client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.core import checks

from pydotorg.search import conf
from pydotorg.search.backends import DATABASE, MEILISEARCH, SearchUnavailable, get_backend
from pydotorg.search.backends.meilisearch import task_timeout_ms

ROOT = Path(__file__).resolve().parents[2]
SEARCH_SETTINGS = tuple(conf.DEFAULTS)


@pytest.fixture
def unset(settings):
    """No search setting at all in settings.py: the app runs on its defaults."""
    for name in SEARCH_SETTINGS:
        if hasattr(settings, name):
            delattr(settings, name)
    return settings


def search_errors() -> list[tuple[str, str]]:
    return [(m.id, m.msg) for m in checks.run_checks() if (m.id or "").startswith("search.")]


def test_defaults_without_any_setting(unset):
    config = conf.search_settings()
    assert (config.backend, config.meilisearch_url, config.meilisearch_api_key) == (DATABASE, None, None)
    assert (config.meilisearch_index, config.meilisearch_timeout, config.meilisearch_task_timeout) == (
        "pydotorg",
        10.0,
        120.0,
    )
    assert conf.index_debounce() == 0.1  # a burst of saves is one index write, searchable within a second
    assert search_errors() == []


def test_a_meilisearch_url_picks_the_meilisearch_backend(unset):
    unset.MEILISEARCH_URL = "http://127.0.0.1:7700"
    assert conf.search_settings().backend == MEILISEARCH
    assert search_errors() == []


@pytest.mark.parametrize(
    ("name", "value", "check_id"),
    [
        ("SEARCH_BACKEND", "pydotorg.search.backends.nope", "search.E001"),
        ("SEARCH_BACKEND", "pydotorg.search.documents", "search.E001"),  # no SearchBackend in it
        ("SEARCH_BACKEND", "pydotorg.search.backends.base", "search.E001"),  # not a BaseSearchBackend
        ("SEARCH_BACKEND", 42, "search.E001"),
        ("MEILISEARCH_TIMEOUT", 0, "search.E002"),
        ("MEILISEARCH_TIMEOUT", -1.5, "search.E002"),
        ("MEILISEARCH_TIMEOUT", "10", "search.E002"),
        ("MEILISEARCH_TASK_TIMEOUT", 0, "search.E002"),
        ("MEILISEARCH_TASK_TIMEOUT", True, "search.E002"),
        ("MEILISEARCH_URL", "ftp://127.0.0.1:7700", "search.E003"),
        ("MEILISEARCH_URL", "http://127.0.0.1:port", "search.E003"),
        ("MEILISEARCH_URL", "http://", "search.E003"),
        ("MEILISEARCH_INDEX", "", "search.E004"),
        ("MEILISEARCH_INDEX", "pydotorg/live", "search.E004"),
        ("MEILISEARCH_INDEX", "x" * 369, "search.E004"),
        ("MEILISEARCH_API_KEY", 12345, "search.E005"),
        ("SEARCH_INDEX_DEBOUNCE_MS", -1, "search.E006"),
        ("SEARCH_INDEX_DEBOUNCE_MS", 0.5, "search.E006"),
        ("SEARCH_INDEX_DEBOUNCE_MS", 60_001, "search.E006"),
    ],
)
def test_each_bad_value_is_a_check_error_naming_the_setting(settings, name, value, check_id):
    setattr(settings, name, value)
    ((found_id, message),) = search_errors()
    assert found_id == check_id
    assert message.startswith(name)


def test_the_meilisearch_backend_without_its_url_is_an_error(settings):
    settings.SEARCH_BACKEND, settings.MEILISEARCH_URL = MEILISEARCH, None
    ((found_id, message),) = search_errors()
    assert found_id == "search.E003" and "MEILISEARCH_URL is not set" in message


def test_the_api_key_is_never_shown(settings):
    settings.MEILISEARCH_API_KEY = "s3cret-key"
    assert "s3cret-key" not in repr(conf.search_settings())
    settings.MEILISEARCH_API_KEY = ["s3cret-key"]
    ((_, message),) = search_errors()
    assert "s3cret-key" not in message


def test_fractions_of_seconds_are_allowed_in_settings_py(settings):
    settings.MEILISEARCH_TASK_TIMEOUT = 0.5
    assert task_timeout_ms() == 500


@pytest.fixture
def silent_meilisearch():
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_silent_meilisearch_is_given_up_on_after_meilisearch_timeout(settings, silent_meilisearch):
    settings.SEARCH_BACKEND, settings.MEILISEARCH_URL = MEILISEARCH, silent_meilisearch
    settings.MEILISEARCH_TIMEOUT = 0.2
    started = time.monotonic()
    with pytest.raises(SearchUnavailable, match=silent_meilisearch):
        async_to_sync(get_backend().search)("anything")
    assert time.monotonic() - started < 5  # the default (10 s) would not be


def manage_check(**environ: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "pydotorg.settings", **environ}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_settings_py_reads_the_timeouts_from_the_environment_and_names_a_bad_one():
    result = manage_check(MEILISEARCH_TIMEOUT="0")
    assert result.returncode != 0
    assert "MEILISEARCH_TIMEOUT='0' must be a whole number >= 1" in result.stderr
    assert manage_check(MEILISEARCH_TIMEOUT="3", MEILISEARCH_TASK_TIMEOUT="30").returncode == 0


def test_manage_py_check_fails_on_an_unknown_backend():
    result = manage_check(SEARCH_BACKEND="pydotorg.search.backends.elastic")
    assert result.returncode != 0
    assert "(search.E001) SEARCH_BACKEND='pydotorg.search.backends.elastic' cannot be imported" in result.stderr
