"""Search backends, chosen like Django's session engines: ``SEARCH_BACKEND`` names a module
whose ``SearchBackend`` class implements :class:`pydotorg.search.backends.base.BaseSearchBackend`.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..conf import DATABASE, MEILISEARCH, backend_path
from .base import BaseSearchBackend, SearchUnavailable

__all__ = [
    "DATABASE",
    "MEILISEARCH",
    "BaseSearchBackend",
    "SearchUnavailable",
    "backend_class",
    "backend_path",
    "get_backend",
]


def backend_class() -> type[BaseSearchBackend]:
    """The ``SearchBackend`` class of the configured module; ImproperlyConfigured (naming
    SEARCH_BACKEND) when it cannot be imported or is not a search backend."""
    path = backend_path()
    fix = f"Use {DATABASE!r} or {MEILISEARCH!r}, or a module with a SearchBackend class, or leave it blank."
    try:
        found = import_string(f"{path}.SearchBackend")
    except ImportError as exc:
        raise ImproperlyConfigured(f"SEARCH_BACKEND={path!r} cannot be imported: {exc}. {fix}") from None
    if not (isinstance(found, type) and issubclass(found, BaseSearchBackend)):
        raise ImproperlyConfigured(
            f"SEARCH_BACKEND={path!r}: its SearchBackend is not a subclass of BaseSearchBackend. {fix}"
        )
    return found


def get_backend() -> BaseSearchBackend:
    """A backend for the current settings (cheap to build; Meilisearch clients are made per call)."""
    return backend_class()()
