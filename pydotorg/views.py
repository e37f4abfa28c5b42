"""The site-wide views: the home page, and the 400 page that says which parameter was wrong."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.template import loader

from pydotorg.blogs.models import BlogEntry
from pydotorg.events.models import Event
from pydotorg.jobs.models import Job

from .query import BadQuery

HOME_ITEMS = 5


def home(request: HttpRequest) -> HttpResponse:
    """Latest blog entries, upcoming events, newest open jobs, and a search box."""
    context = {
        "entries": BlogEntry.objects.select_related("feed").order_by("-pub_date", "-pk")[:HOME_ITEMS],
        "events": Event.objects.upcoming()[:HOME_ITEMS],
        "jobs": Job.objects.visible().order_by("-created", "-pk")[:HOME_ITEMS],
    }
    return render(request, "home.html", context)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: our own BadQuery messages are shown; Django's (suspicious headers...) are not."""
    message = str(exception) if isinstance(exception, BadQuery) else ""
    return HttpResponseBadRequest(loader.render_to_string("400.html", {"message": message}, request))
