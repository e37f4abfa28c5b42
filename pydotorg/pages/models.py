from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Model
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from . import paths, rendering


class PagePathField(models.CharField):
    """A page's URL path, validated and normalised (pydotorg/pages/paths.py) by model validation.

    Only cleaning normalises (not to_python, which lookups use too: ``path__icontains="ab"``
    must stay a substring search).
    """

    def clean(self, value: Any, model_instance: Model | None) -> Any:
        return super().clean(paths.normalise(value) if value else value, model_instance)


class Page(models.Model):
    class ContentFormat(models.TextChoices):
        MARKDOWN = rendering.MARKDOWN, "Markdown"
        HTML = rendering.HTML, "HTML"
        RESTRUCTUREDTEXT = rendering.RESTRUCTUREDTEXT, "reStructuredText"

    title = models.CharField(max_length=500)
    path = PagePathField(
        max_length=paths.MAX_LENGTH,
        unique=True,
        help_text="Where the page lives on this site, e.g. about/license/ for /about/license/. "
        "Lowercase letters, digits and - _ . ~ between slashes.",
        error_messages={"unique": "Another page already has this path. Choose another, or edit that page."},
    )
    keywords = models.CharField(max_length=1000, blank=True)
    description = models.TextField(blank=True)
    content = models.TextField(blank=True)
    content_format = models.CharField(max_length=32, choices=ContentFormat.choices, default=ContentFormat.MARKDOWN)
    is_published = models.BooleanField(default=True, db_index=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Code that saves without full_clean() gets the same one form, or a ValidationError.
        self.path = paths.normalise(self.path)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        # reverse() percent-encodes whatever a row saved before paths were validated may hold.
        return reverse("pages:page", kwargs={"path": self.path or "/"})

    @property
    def html(self) -> SafeString:
        """The content rendered by its format and sanitised (pydotorg/pages/rendering.py)."""
        return mark_safe(rendering.render(self.content, self.content_format))
