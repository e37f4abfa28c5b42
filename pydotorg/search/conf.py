"""The search settings, with their defaults, read in one place.

Every other search module asks this one; nothing else in search reads ``django.conf.settings``.
The search app works without any of them in settings.py; a bad value is an
ImproperlyConfigured error that names the setting, and a system check (``search.E001`` to
``search.E005``, pydotorg/search/checks.py).

Values are read at each call, not cached, so tests (and ``override_settings``) can change them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DATABASE = "pydotorg.search.backends.database"
MEILISEARCH = "pydotorg.search.backends.meilisearch"

DEFAULTS: dict[str, str | int | None] = {
    # A module with a SearchBackend class; None: MEILISEARCH when MEILISEARCH_URL is set, else DATABASE.
    "SEARCH_BACKEND": None,
    "MEILISEARCH_URL": None,  # http(s)://host[:port] of the Meilisearch server
    "MEILISEARCH_API_KEY": None,
    "MEILISEARCH_INDEX": "pydotorg",  # the one index every content type shares
    "MEILISEARCH_TIMEOUT": 10,  # seconds one HTTP request to Meilisearch may take
    "MEILISEARCH_TASK_TIMEOUT": 120,  # seconds a write waits for its Meilisearch task to finish
    # Milliseconds a save's index update waits for more saves of the same object (0: none). A save is
    # searchable this long after the last save of a burst, plus the job's run: an idle worker takes a
    # debounced job when it is due (Redis ends its blocked take within 100 ms, at hz 10). 100 folds the
    # saves of one burst (a double submit, an inline formset's saves) and keeps edit-to-searchable at a
    # p95 of about 210 ms (bench/search.py: 48 ms with 0, 413 ms with 300); a site whose editors save
    # in slower bursts sets more, up to a second or so for the editors' promise.
    "SEARCH_INDEX_DEBOUNCE_MS": 100,
}
# The longest index debounce: longer, an editor would wonder where the save went.
MAX_INDEX_DEBOUNCE_MS = 60_000
# Meilisearch index uids: letters, digits, - and _, at most 400 bytes. A rebuild builds beside the
# live index under "<index>_rebuild_<14-digit UTC time>_<8 hex>", 32 characters more.
INDEX_NAME = re.compile(r"[A-Za-z0-9_-]+")
MAX_INDEX_NAME = 400 - 32


@dataclass(frozen=True)
class SearchSettings:
    backend: str  # dotted path of the backend module, resolved (never None)
    meilisearch_url: str | None
    meilisearch_api_key: str | None = field(repr=False)  # a secret: kept out of reprs and logs
    meilisearch_index: str
    meilisearch_timeout: float  # seconds
    meilisearch_task_timeout: float  # seconds


def _get(name: str) -> object:
    # None is unset: settings.py passes None for a variable that is not in the environment.
    value = getattr(settings, name, None)
    return DEFAULTS[name] if value is None else value


def meilisearch_url() -> str | None:
    """MEILISEARCH_URL: None (unset or blank) or an http(s) URL with a host."""
    value = _get("MEILISEARCH_URL")
    if value is None or value == "":
        return None
    problem = f"MEILISEARCH_URL={value!r} must be the http(s) address of Meilisearch, e.g. 'http://127.0.0.1:7700'"
    if not isinstance(value, str):
        raise ImproperlyConfigured(f"{problem}.")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as exc:
        raise ImproperlyConfigured(f"{problem}: {exc}.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(f"{problem}.")
    return value


def meilisearch_api_key() -> str | None:
    """MEILISEARCH_API_KEY: None (unset or blank) or a string. The error never shows the value."""
    value = _get("MEILISEARCH_API_KEY")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ImproperlyConfigured(
            f"MEILISEARCH_API_KEY must be a string (a Meilisearch key), not {type(value).__name__}."
        )
    return value


def backend_path() -> str:
    """The backend module's dotted path: SEARCH_BACKEND, or the default for MEILISEARCH_URL.

    Not imported here: pydotorg.search.backends.backend_class() does, and says what is wrong.
    """
    value = _get("SEARCH_BACKEND")
    if value is None or value == "":
        # Set is enough to choose; meilisearch_url() says what is wrong with a bad one.
        return DATABASE if _get("MEILISEARCH_URL") in (None, "") else MEILISEARCH
    if not isinstance(value, str):
        raise ImproperlyConfigured(
            f"SEARCH_BACKEND={value!r} must be a module path such as {DATABASE!r} or {MEILISEARCH!r}, "
            "or blank for the default."
        )
    return value


def meilisearch_index() -> str:
    value = _get("MEILISEARCH_INDEX")
    if not isinstance(value, str) or not INDEX_NAME.fullmatch(value) or len(value) > MAX_INDEX_NAME:
        raise ImproperlyConfigured(
            f"MEILISEARCH_INDEX={value!r} must be 1 to {MAX_INDEX_NAME} letters, digits, '-' or '_' "
            f"(default {DEFAULTS['MEILISEARCH_INDEX']!r})."
        )
    return value


def _seconds(name: str) -> float:
    value = _get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ImproperlyConfigured(f"{name}={value!r} must be a number of seconds above 0 (default {DEFAULTS[name]}).")
    return float(value)


def index_debounce() -> float | None:
    """SEARCH_INDEX_DEBOUNCE_MS as seconds for ``enqueue(debounce=...)``, or None for 0 (no debounce)."""
    value = _get("SEARCH_INDEX_DEBOUNCE_MS")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INDEX_DEBOUNCE_MS:
        raise ImproperlyConfigured(
            f"SEARCH_INDEX_DEBOUNCE_MS={value!r} must be whole milliseconds from 0 (no debounce) to "
            f"{MAX_INDEX_DEBOUNCE_MS} (default {DEFAULTS['SEARCH_INDEX_DEBOUNCE_MS']})."
        )
    return value / 1000 if value else None


def meilisearch_timeout() -> float:
    return _seconds("MEILISEARCH_TIMEOUT")


def meilisearch_task_timeout() -> float:
    return _seconds("MEILISEARCH_TASK_TIMEOUT")


def search_settings() -> SearchSettings:
    """The current search settings, validated; raises ImproperlyConfigured naming the bad one."""
    config = SearchSettings(
        backend=backend_path(),
        meilisearch_url=meilisearch_url(),
        meilisearch_api_key=meilisearch_api_key(),
        meilisearch_index=meilisearch_index(),
        meilisearch_timeout=meilisearch_timeout(),
        meilisearch_task_timeout=meilisearch_task_timeout(),
    )
    if config.backend == MEILISEARCH and config.meilisearch_url is None:
        raise ImproperlyConfigured(
            f"SEARCH_BACKEND is {MEILISEARCH!r} but MEILISEARCH_URL is not set; set it to the address of "
            f"Meilisearch, or use {DATABASE!r}."
        )
    return config
