"""Query-string values of the public views, parsed into typed values; anything else is a 400.

``BadQuery`` is Django's ``BadRequest``, so a view can simply let it propagate: the
site's ``handler400`` (pydotorg/views.py) shows its message. Messages quote at most a
short prefix of what was sent, so a huge value is not echoed back.
"""

from __future__ import annotations

import logging
import re

from django.core.exceptions import BadRequest
from django.core.paginator import EmptyPage, Page, Paginator
from django.db.models import Model, QuerySet
from django.http import Http404, QueryDict
from django.shortcuts import get_object_or_404

# ASCII digits only: str.isdigit() accepts "²" (which int() rejects) and other scripts' digits.
_DIGITS = re.compile(r"[0-9]{1,9}")
# A page number past this many digits is not a page anyone reached by following links.
MAX_PAGE_DIGITS = 6
_PAGE = re.compile(rf"[0-9]{{1,{MAX_PAGE_DIGITS}}}")


class BadQuery(BadRequest):
    """A query-string value that does not parse; the message says what to send instead."""


class BadQueryWithoutTraceback(logging.Filter):
    """A logging filter (``django.request``): a ``BadQuery``'s record keeps its line ("page must be ...: /blogs/")
    and loses its traceback, which says nothing about the site and would let anyone flood the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], BadQuery):
            record.exc_info = record.exc_text = None
        return True


def quoted(value: str, limit: int = 20) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def page_number(params: QueryDict, maximum: int | None = None) -> int:
    """``page`` as 1, 2, ...; 1 when absent or blank. Raises BadQuery for anything else or above ``maximum``."""
    raw = params.get("page", "")
    if raw == "":
        return 1
    number = int(raw) if _PAGE.fullmatch(raw) else 0
    if number < 1 or (maximum is not None and number > maximum):
        upper = f"from 1 to {maximum}" if maximum is not None else f"from 1, of at most {MAX_PAGE_DIGITS} digits"
        raise BadQuery(f"page must be a whole number {upper}, not {quoted(raw)}.")
    return number


def object_id(params: QueryDict, name: str) -> int | None:
    """The id in ``name`` (None when absent or blank); BadQuery when it is not a positive whole number."""
    raw = params.get(name, "")
    if raw == "":
        return None
    if not _DIGITS.fullmatch(raw) or int(raw) < 1:
        raise BadQuery(f"{name} must be the number of a {name}, such as {name}=3, not {quoted(raw)}.")
    return int(raw)


def chosen(params: QueryDict, name: str, model: type[Model]) -> Model | None:
    """The ``model`` object whose id is in ``name``: None when absent, BadQuery when malformed, 404 when unknown."""
    pk = object_id(params, name)
    return None if pk is None else get_object_or_404(model, pk=pk)


def paginate(params: QueryDict, queryset: QuerySet, per_page: int) -> Page:
    """The requested page of ``queryset``: BadQuery for a malformed ``page``, 404 past the last page."""
    number = page_number(params)
    paginator = Paginator(queryset, per_page)
    try:
        return paginator.page(number)
    except EmptyPage:
        raise Http404(f"There is no page {number}; the last is {paginator.num_pages}.") from None
