from django.db import models


class JobType(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class JobCategory(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "job categories"

    def __str__(self) -> str:
        return self.name


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
    expires = models.DateTimeField(null=True, blank=True)
    job_types = models.ManyToManyField(JobType, blank=True, related_name="jobs")
    category = models.ForeignKey(JobCategory, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.job_title}, {self.company_name}"

    def get_absolute_url(self) -> str:
        return f"/jobs/{self.pk}/"

    @property
    def location(self) -> str:
        return ", ".join(part for part in (self.city, self.region, self.country) if part)
