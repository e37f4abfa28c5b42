"""Each published Page at its own path."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from . import paths
from .models import Page


def page(request: HttpRequest, path: str) -> HttpResponse:
    """The page at ``path``; a 301 to its one form (``/About`` -> ``/about/``). Staff also see unpublished pages."""
    try:
        canonical = paths.normalise(path)
    except ValidationError:
        raise Http404("No page can live at this path.") from None
    pages = Page.objects.all() if request.user.is_staff else Page.objects.filter(is_published=True)
    found = pages.filter(path=canonical).first()
    if found is None:
        raise Http404("No page at this path.")
    url = found.get_absolute_url()
    if request.path != url:
        query = request.META.get("QUERY_STRING", "")
        return redirect(f"{url}?{query}" if query else url, permanent=True)
    return render(request, "pages/page.html", {"page": found})
