"""What every admin page of the site shares: wrong parameters are answered as wrong input, not a 500.

Django's admin turns most wrong lookups in a changelist's query string into its "?e=1" page, but not
all: a year past 9999 (``?created__year=99999``, or 9999 itself in the date hierarchy) or a day number
past what a date holds raises ``ValueError`` or ``OverflowError`` while the query is built. And a NUL
byte in a query-string parameter meets PostgreSQL, which cannot hold one in text (``DataError``), or a
view that fails on it: the changelist filters, the add form's initial values, the autocomplete. (A NUL
in a posted form field is the form's to refuse, with its own error: Django's forms do.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db import DataError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

logger = logging.getLogger("pydotorg.admin")

NUL_REFUSED = "A query-string parameter holds a NUL byte (%00), which no link of the admin sends. Remove it."


class SiteAdmin(admin.AdminSite):
    """The default admin site (``pydotorg.apps.SiteAdminConfig``). Every admin view refuses a NUL byte in
    a query-string parameter, name or value, with a 400 saying so; every registered ModelAdmin, the site's
    and other apps' (auth's, tasks_app's), gets ``ChangelistGuard``."""

    def admin_view(self, view: Callable[..., HttpResponse], cacheable: bool = False) -> Callable[..., HttpResponse]:
        checked = super().admin_view(view, cacheable)

        @wraps(checked)
        def refusing_nul(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if any("\x00" in name or any("\x00" in v for v in values) for name, values in request.GET.lists()):
                return HttpResponseBadRequest(NUL_REFUSED, content_type="text/plain; charset=utf-8")
            return checked(request, *args, **kwargs)

        return refusing_nul

    def register(self, model_or_iterable, admin_class=None, **options) -> None:
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, ChangelistGuard):
            admin_class = type(
                admin_class.__name__, (ChangelistGuard, admin_class), {"__module__": admin_class.__module__}
            )
        super().register(model_or_iterable, admin_class, **options)


class ChangelistGuard:
    """A ModelAdmin mixin: a changelist whose query string makes building its query raise ``ValueError``,
    ``OverflowError`` or ``DataError`` is answered as Django answers other wrong lookups (a redirect to
    ``?e=1``), and the error logged, so that a bug of the admin's own is still seen. Without a query
    string there is no lookup to blame: the error goes on, a 500."""

    def get_changelist_instance(self, request: HttpRequest):
        try:
            return super().get_changelist_instance(request)  # type: ignore[misc]
        except (ValueError, OverflowError, DataError) as exc:
            if not request.GET:
                raise
            logger.warning("Changelist %s: refused its query string (%s)", request.path, exc, exc_info=True)
            raise IncorrectLookupParameters(exc) from exc
