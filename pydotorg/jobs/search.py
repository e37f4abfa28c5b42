"""The search document of a job (found by pydotorg.search when it starts; see DocumentType there)."""

from __future__ import annotations

from django.db.models import Q

from pydotorg.search.documents import FOREVER, Document, DocumentType, Related, plain, register, timestamp

from .models import Job, JobCategory, JobType


@register
class JobDocument(DocumentType):
    name = "job"
    label = "Job"
    model = Job
    select_related = ("category",)
    prefetch_related = ("job_types",)
    # A job shows its category's and its types' names: renaming or deleting one re-indexes its jobs,
    # and so does adding or removing a type (from either side of the many-to-many).
    related = {
        JobCategory: Related("category", fields=("name",)),
        JobType: Related("job_types", fields=("name",)),
    }
    text_fields = ("company", "location", "country", "category", "job_types")
    filterable = ("country", "telecommuting")
    sortable = ("expires",)

    def indexable_filter(self) -> Q:
        return Job.visible_filter()  # approved and not expired, as of the query

    def fields(self, job: Job) -> Document:
        return {
            "title": plain(job.job_title),
            "description": plain(job.description),
            "content": plain(job.requirements),
            "company": job.company_name,
            "location": job.location,
            "country": job.country,
            "telecommuting": job.telecommuting,
            "job_types": sorted(t.name for t in job.job_types.all()),
            "category": job.category.name if job.category else "",
            "expires": timestamp(job.expires),
            "visible_until": timestamp(job.expires) or FOREVER,
        }
