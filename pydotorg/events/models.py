from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.urls import reverse
from django.utils import timezone

from pydotorg.validators import displayable_datetime

# Shown by model validation (the admin form) when the constraint below would be violated.
ENDS_BEFORE_START = "An event cannot end before it starts."


class EventQuerySet(models.QuerySet):
    def upcoming(self, now: datetime | None = None) -> EventQuerySet:
        """Events that have not ended, soonest first."""
        return self.filter(Event.upcoming_filter(now)).order_by("starts_at", "pk")

    def past(self, now: datetime | None = None) -> EventQuerySet:
        """Events that have ended, most recent first."""
        return self.exclude(Event.upcoming_filter(now)).order_by("-starts_at", "-pk")


class Event(models.Model):
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    venue = models.CharField(max_length=500, blank=True)
    location = models.CharField(max_length=500, blank=True)
    starts_at = models.DateTimeField(db_index=True, validators=[displayable_datetime])
    ends_at = models.DateTimeField(null=True, blank=True, validators=[displayable_datetime])
    all_day = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__isnull=True) | models.Q(ends_at__gte=models.F("starts_at")),
                name="event_ends_after_start",
                violation_error_message=ENDS_BEFORE_START,
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("events:detail", args=[self.pk])

    def is_upcoming(self, now: datetime | None = None) -> bool:
        return Event.objects.filter(pk=self.pk).filter(Event.upcoming_filter(now)).exists()

    @staticmethod
    def upcoming_filter(now: datetime | None = None) -> models.Q:
        """Not over yet: its end is ahead; without an end, its start (all-day: its day) is."""
        now = now or timezone.now()
        return (
            models.Q(ends_at__gte=now)
            | models.Q(ends_at__isnull=True, all_day=False, starts_at__gte=now)
            | models.Q(ends_at__isnull=True, all_day=True, starts_at__gt=now - timedelta(days=1))
        )
