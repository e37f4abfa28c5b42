from django.contrib import admin

from .models import Job, JobCategory, JobType


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["job_title", "company_name", "city", "country", "status", "telecommuting", "expires"]
    list_filter = ["status", "telecommuting", "category", "job_types", "country"]
    search_fields = ["job_title", "company_name", "city", "region", "country", "description"]
    filter_horizontal = ["job_types"]
    date_hierarchy = "created"


@admin.register(JobType)
class JobTypeAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(JobCategory)
class JobCategoryAdmin(admin.ModelAdmin):
    search_fields = ["name"]
