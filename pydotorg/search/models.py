from django.db import models

from .fields import TSVectorField


class IndexState(models.Model):
    """One row per indexed object: the per-object generation behind job keys.

    A save locks this row (in its own transaction) and schedules ``index_content``
    with the key ``search:<type>:<id>:<generation>``; the job bumps the generation
    when it starts. Saves before the bump share the pending job (and the bump
    waits for their commit, so the job reads them); saves after it get a new key,
    so a save never lands on an already running job and is never lost.
    """

    content_type = models.CharField(max_length=20)
    object_id = models.BigIntegerField()
    generation = models.BigIntegerField(default=0)
    touched = models.DateTimeField(null=True, db_index=True, help_text="When a job last claimed this object.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["content_type", "object_id"], name="search_indexstate_unique_object"),
        ]

    def __str__(self) -> str:
        return f"{self.content_type}:{self.object_id} (generation {self.generation})"


class IndexGeneration(models.Model):
    """The database backend's generations; the one marked live is what searches read.

    A rebuild writes a new generation beside the live one and flips ``is_live`` in
    one transaction, so searches never see a half-built index.
    """

    created = models.DateTimeField(auto_now_add=True)
    is_live = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["is_live"], condition=models.Q(is_live=True), name="search_one_live"),
        ]

    def __str__(self) -> str:
        return f"generation {self.pk}{' (live)' if self.is_live else ''}"


class SearchDocument(models.Model):
    """A document of the database search backend."""

    generation = models.ForeignKey(IndexGeneration, on_delete=models.CASCADE, related_name="documents")
    content_type = models.CharField(max_length=20)
    object_id = models.BigIntegerField()
    title = models.TextField()
    description = models.TextField(blank=True)
    content = models.TextField(blank=True)
    url = models.TextField(blank=True)
    created = models.BigIntegerField(null=True)
    modified = models.BigIntegerField(null=True)
    visible_until = models.BigIntegerField(help_text="Unix time after which the document is not shown.")
    extra = models.TextField(blank=True, help_text="Type-specific text: company, location, venue, feed...")
    # Filled on PostgreSQL only (weighted title > description and extra > content); SQLite matches plain text.
    search_vector = TSVectorField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "content_type", "object_id"], name="search_document_unique_object"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.content_type}:{self.object_id} {self.title}"
