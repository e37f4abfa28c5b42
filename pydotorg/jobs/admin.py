from django.contrib import admin

from pydotorg.admin_base import SiteModelAdmin

from .models import Job, JobCategory, JobType


@admin.register(Job)
class JobAdmin(SiteModelAdmin):
    list_display = ["job_title", "company_name", "city", "country", "status", "telecommuting", "expires"]
    list_filter = ["status", "telecommuting", "category", "job_types", "country"]
    search_fields = ["job_title", "company_name", "city", "region", "country", "description"]
    filter_horizontal = ["job_types"]
    date_hierarchy = "created"


@admin.register(JobType)
class JobTypeAdmin(SiteModelAdmin):
    search_fields = ["name"]


@admin.register(JobCategory)
class JobCategoryAdmin(SiteModelAdmin):
    search_fields = ["name"]
