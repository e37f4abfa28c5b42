"""/jobs/: approved jobs that have not expired, newest first, by type or category; and each job."""

from __future__ import annotations

from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from pydotorg.query import chosen, paginate

from .models import Job, JobCategory, JobType

PER_PAGE = 20


def job_list(request: HttpRequest) -> HttpResponse:
    jobs = Job.objects.visible().select_related("category").prefetch_related("job_types").order_by("-created", "-pk")
    if job_type := chosen(request.GET, "type", JobType):
        jobs = jobs.filter(job_types=job_type)
    if category := chosen(request.GET, "category", JobCategory):
        jobs = jobs.filter(category=category)
    context = {
        "page_obj": paginate(request.GET, jobs, PER_PAGE),
        "job_type": job_type,
        "category": category,
        "job_types": JobType.objects.filter(Exists(Job.objects.visible().filter(job_types=OuterRef("pk")))),
        "categories": JobCategory.objects.filter(Exists(Job.objects.visible().filter(category=OuterRef("pk")))),
    }
    return render(request, "jobs/job_list.html", context)


def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A visible job; staff also see drafts and expired jobs (the admin's "View on site")."""
    jobs = Job.objects.all() if request.user.is_staff else Job.objects.visible()
    job = get_object_or_404(jobs.select_related("category").prefetch_related("job_types"), pk=pk)
    return render(request, "jobs/job_detail.html", {"job": job})
