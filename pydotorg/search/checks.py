"""System checks for the search settings (``manage.py check``; also run before serving and by runworker)."""

from __future__ import annotations

from collections.abc import Callable

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from . import conf
from .backends import backend_class

# Each reader of pydotorg.search.conf, with the id of its error and a hint.
READERS: tuple[tuple[Callable[[], object], str, str], ...] = (
    (backend_class, "search.E001", "Blank picks Meilisearch when MEILISEARCH_URL is set, else the database."),
    (conf.meilisearch_timeout, "search.E002", "Whole seconds in the environment, e.g. MEILISEARCH_TIMEOUT=10."),
    (conf.meilisearch_task_timeout, "search.E002", "Whole seconds, e.g. MEILISEARCH_TASK_TIMEOUT=120."),
    (conf.meilisearch_url, "search.E003", "Leave it unset to search with the database backend."),
    (conf.meilisearch_index, "search.E004", "Rebuilds add a suffix to this name; keep it short and plain."),
    (conf.meilisearch_api_key, "search.E005", "Set MEILISEARCH_API_KEY in the environment, or leave it unset."),
    (conf.index_debounce, "search.E006", "e.g. SEARCH_INDEX_DEBOUNCE_MS=100; 0 indexes each save at once."),
)


@register()
def check_search_settings(app_configs, **kwargs) -> list[Error]:
    errors = []
    for read, id, hint in READERS:
        try:
            read()
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), hint=hint, id=id))
    if errors:
        return errors
    try:
        conf.search_settings()  # the settings together: the Meilisearch backend needs its URL
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="search.E003")]
    return []
