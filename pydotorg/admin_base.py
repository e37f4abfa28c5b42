"""What every admin page of the site shares: wrong parameters are answered as wrong input, not a 500.

Django's admin turns most wrong lookups in a changelist's query string into its "?e=1" page, but not
all: a year past 9999 (``?created__year=99999``, or 9999 itself in the date hierarchy) or a day number
past what a date holds raises ``ValueError`` or ``OverflowError`` while the query is built. And a NUL
byte in any parameter meets PostgreSQL, which cannot hold one in text (``DataError``), or a form field
that fails on it: the changelist filters, the add form's initial values, the autocomplete.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db import DataError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict

NUL_REFUSED = "A request parameter holds a NUL byte (%00), which no form of the admin sends. Remove it."


class SiteAdmin(admin.AdminSite):
    """The default admin site (``pydotorg.apps.SiteAdminConfig``): every admin view refuses a NUL byte in a
    query-string or form parameter, name or value, with a 400 saying so."""

    def admin_view(self, view: Callable[..., HttpResponse], cacheable: bool = False) -> Callable[..., HttpResponse]:
        checked = super().admin_view(view, cacheable)

        @wraps(checked)
        def refusing_nul(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if any(_holds_nul(params) for params in (request.GET, request.POST)):
                return HttpResponseBadRequest(NUL_REFUSED, content_type="text/plain; charset=utf-8")
            return checked(request, *args, **kwargs)

        return refusing_nul


def _holds_nul(params: QueryDict) -> bool:
    return any("\x00" in name or any("\x00" in value for value in values) for name, values in params.lists())


class SiteModelAdmin(admin.ModelAdmin):
    def get_changelist_instance(self, request: HttpRequest):
        """Django's, with the errors above raised as ``IncorrectLookupParameters`` (the admin redirects
        to the changelist with ``?e=1``)."""
        try:
            return super().get_changelist_instance(request)
        except (ValueError, OverflowError, DataError) as exc:
            raise IncorrectLookupParameters(exc) from exc
