from django.core.validators import URLValidator
from django.db import models
from django.urls import reverse

from pydotorg.validators import displayable_datetime


class Feed(models.Model):
    name = models.CharField(max_length=200)
    website_url = models.URLField(max_length=2000, blank=True)
    feed_url = models.URLField(max_length=2000, unique=True, validators=[URLValidator(schemes=["http", "https"])])
    is_active = models.BooleanField(default=True, db_index=True)
    # What polite (conditional) fetching needs, stored exactly as received.
    etag = models.CharField(max_length=1000, blank=True)
    last_modified = models.CharField(max_length=200, blank=True)
    last_fetched = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # A 429 or 503 with Retry-After: the server's wish, honoured; not a failure.
    deferred_until = models.DateTimeField(
        null=True, blank=True, help_text="Not fetched before this time: its server asked us to wait (Retry-After)."
    )
    deferred_reason = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return f"{reverse('blogs:list')}?feed={self.pk}"


class BlogEntry(models.Model):
    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="entries")
    guid = models.CharField(max_length=1000)
    title = models.CharField(max_length=500)
    summary = models.TextField(blank=True)
    content = models.TextField(blank=True)
    url = models.URLField(max_length=2000, blank=True)
    pub_date = models.DateTimeField(db_index=True, validators=[displayable_datetime])
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-pub_date"]
        verbose_name_plural = "blog entries"
        constraints = [
            # Unique per feed, not globally: two feeds may carry the same entry.
            models.UniqueConstraint(fields=["feed", "guid"], name="blogentry_unique_guid_per_feed"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("blogs:entry", args=[self.pk])
