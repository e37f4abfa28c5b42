"""The search document of a page (found by pydotorg.search when it starts; see DocumentType there)."""

from __future__ import annotations

from django.db.models import Q

from pydotorg.search.documents import Document, DocumentType, plain, reader_text, register

from .models import Page


@register
class PageDocument(DocumentType):
    name = "page"
    label = "Page"
    model = Page
    key_text_fields = ("keywords",)

    def indexable_filter(self) -> Q:
        return Q(is_published=True)

    def fields(self, page: Page) -> Document:
        return {
            "title": plain(page.title),
            "description": plain(page.description),
            "content": reader_text(page.html),  # rendered: what the visitor reads, not the source markup
            "path": page.path,
            "keywords": page.keywords,
        }
