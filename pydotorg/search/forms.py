"""The search request: what ``q``, ``type`` and ``page`` may be, with errors that say how to fix them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.http import QueryDict

from pydotorg.query import BadQuery, page_number, quoted

from .documents import TYPES

MAX_QUERY_LENGTH = 200
PER_PAGE = 20
MAX_PAGE = 50  # deep pages are not useful and are expensive for both backends
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class SearchRequest:
    query: str
    content_type: str | None
    page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * PER_PAGE


def parse(params: QueryDict) -> SearchRequest:
    """The search in ``params``; raises BadQuery (a 400) saying what to change."""
    # Control characters (a NUL breaks PostgreSQL text) carry no meaning in a search.
    query = " ".join(_CONTROL.sub(" ", params.get("q", "")).split())
    if len(query) > MAX_QUERY_LENGTH:
        raise BadQuery(f"The search is {len(query)} characters long; the limit is {MAX_QUERY_LENGTH}. Use fewer words.")
    content_type = params.get("type") or None
    if content_type is not None and content_type not in TYPES:
        raise BadQuery(f"Unknown type {quoted(content_type)}; use one of {', '.join(TYPES)}, or leave it out for all.")
    return SearchRequest(query=query, content_type=content_type, page=page_number(params, maximum=MAX_PAGE))
