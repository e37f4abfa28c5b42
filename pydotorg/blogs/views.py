"""/blogs/: the aggregated entries, newest first, optionally of one feed; and each entry with a link out.

Entry HTML was sanitised when stored; the templates sanitise it again on output
(the ``sanitize`` filter), and link out only to http(s) URLs (``is_web_url``).
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from pydotorg.query import chosen, paginate

from .models import BlogEntry, Feed

PER_PAGE = 20


def entry_list(request: HttpRequest) -> HttpResponse:
    entries = BlogEntry.objects.select_related("feed").order_by("-pub_date", "-pk")
    if feed := chosen(request.GET, "feed", Feed):
        entries = entries.filter(feed=feed)
    context = {
        "page_obj": paginate(request.GET, entries, PER_PAGE),
        "feed": feed,
        "feeds": Feed.objects.filter(Exists(BlogEntry.objects.filter(feed=OuterRef("pk")))).order_by("name"),
    }
    return render(request, "blogs/entry_list.html", context)


def entry_detail(request: HttpRequest, pk: int) -> HttpResponse:
    entry = get_object_or_404(BlogEntry.objects.select_related("feed"), pk=pk)
    return render(request, "blogs/entry_detail.html", {"entry": entry})
