"""The search document of a blog entry (found by pydotorg.search when it starts; see DocumentType there).

The only module of blogs that knows search: the rest of blogs sends ``entries_changed`` after its
bulk upserts and Django's model signals otherwise, and this declaration says what search follows.
"""

from __future__ import annotations

from pydotorg.search.documents import Document, DocumentType, Related, plain, reader_text, register, timestamp

from .models import BlogEntry, Feed
from .signals import entries_changed


@register
class BlogEntryDocument(DocumentType):
    name = "blog"
    label = "Blog entry"
    model = BlogEntry
    select_related = ("feed",)
    # Entries carry their feed's name: a rename re-indexes them, a fetch (last_fetched, etag...) does not.
    related = {Feed: Related("feed", fields=("name",))}
    changed_signals = (entries_changed,)
    text_fields = ("feed",)
    filterable = ("feed_id",)
    sortable = ("published",)

    def fields(self, entry: BlogEntry) -> Document:
        return {
            "title": plain(entry.title),
            "description": reader_text(entry.summary),
            "content": reader_text(entry.content),
            "feed": entry.feed.name,
            "feed_id": entry.feed_id,
            "published": timestamp(entry.pub_date),
        }
