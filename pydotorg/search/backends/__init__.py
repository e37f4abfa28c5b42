"""Search backends, chosen like Django's session engines: ``SEARCH_BACKEND`` names a module
whose ``SearchBackend`` class implements :class:`pydotorg.search.backends.base.BaseSearchBackend`.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from .base import BaseSearchBackend, SearchUnavailable

__all__ = ["BaseSearchBackend", "SearchUnavailable", "backend_path", "get_backend"]

DATABASE = "pydotorg.search.backends.database"
MEILISEARCH = "pydotorg.search.backends.meilisearch"


def backend_path() -> str:
    explicit = getattr(settings, "SEARCH_BACKEND", None)
    if explicit:
        return explicit
    return MEILISEARCH if getattr(settings, "MEILISEARCH_URL", None) else DATABASE


def get_backend() -> BaseSearchBackend:
    """A backend for the current settings (cheap to build; Meilisearch clients are made per call)."""
    return import_string(f"{backend_path()}.SearchBackend")()
