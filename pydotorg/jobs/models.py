from __future__ import annotations

from django.db import models
from django.urls import reverse
from django.utils import timezone

from pydotorg.validators import displayable_datetime


class JobType(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return f"{reverse('jobs:list')}?type={self.pk}"


class JobCategory(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "job categories"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return f"{reverse('jobs:list')}?category={self.pk}"


class JobQuerySet(models.QuerySet):
    def visible(self) -> JobQuerySet:
        """Approved jobs that have not expired: what the public sees and search indexes."""
        return self.filter(Job.visible_filter())


class Job(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        REVIEW = "review", "In review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        ARCHIVED = "archived", "Archived"
        EXPIRED = "expired", "Expired"

    job_title = models.CharField(max_length=200)
    company_name = models.CharField(max_length=200)
    city = models.CharField(max_length=100)
    region = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=100)
    description = models.TextField()
    requirements = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    telecommuting = models.BooleanField(default=False)
    expires = models.DateTimeField(null=True, blank=True, validators=[displayable_datetime])
    job_types = models.ManyToManyField(JobType, blank=True, related_name="jobs")
    category = models.ForeignKey(JobCategory, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.job_title}, {self.company_name}"

    def get_absolute_url(self) -> str:
        return reverse("jobs:detail", args=[self.pk])

    @staticmethod
    def visible_filter() -> models.Q:
        """Approved and not expired, as of now (evaluate it when the query runs, not once)."""
        return models.Q(status=Job.Status.APPROVED) & (
            models.Q(expires__isnull=True) | models.Q(expires__gt=timezone.now())
        )

    @property
    def is_visible(self) -> bool:
        return self.status == self.Status.APPROVED and (self.expires is None or self.expires > timezone.now())

    @property
    def location(self) -> str:
        return ", ".join(part for part in (self.city, self.region, self.country) if part)
