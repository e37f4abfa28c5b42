"""The search document of an event (found by pydotorg.search when it starts; see DocumentType there).

An event shows only its own fields (its venue and location are text of the event, not other
objects), so it declares nothing ``related``.
"""

from __future__ import annotations

from pydotorg.search.documents import Document, DocumentType, plain, register, timestamp

from .models import Event


@register
class EventDocument(DocumentType):
    name = "event"
    label = "Event"
    model = Event
    text_fields = ("venue", "location")
    sortable = ("starts",)

    def fields(self, event: Event) -> Document:
        return {
            "title": plain(event.title),
            "description": plain(event.description),
            "content": "",
            "venue": event.venue,
            "location": event.location,
            "starts": timestamp(event.starts_at),
            "ends": timestamp(event.ends_at),
            "all_day": event.all_day,
        }
