"""/events/: upcoming events soonest first, then past events (paginated); and each event."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from pydotorg.query import paginate

from .models import Event

PER_PAGE = 20
MAX_UPCOMING = 100


def event_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    past = paginate(request.GET, Event.objects.past(now), PER_PAGE)
    # Upcoming events head the first page only; later pages go further into the past.
    upcoming = Event.objects.upcoming(now)[:MAX_UPCOMING] if past.number == 1 else []
    return render(request, "events/event_list.html", {"upcoming": upcoming, "page_obj": past})


def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=pk)
    return render(request, "events/event_detail.html", {"event": event, "is_past": not event.is_upcoming()})
