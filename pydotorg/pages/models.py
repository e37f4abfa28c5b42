from django.db import models


class Page(models.Model):
    class ContentFormat(models.TextChoices):
        MARKDOWN = "markdown", "Markdown"
        HTML = "html", "HTML"
        RESTRUCTUREDTEXT = "restructuredtext", "reStructuredText"

    title = models.CharField(max_length=500)
    path = models.CharField(max_length=500, unique=True, help_text="URL path, e.g. about/license/")
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

    def get_absolute_url(self) -> str:
        return "/" + self.path.strip("/") + "/"
