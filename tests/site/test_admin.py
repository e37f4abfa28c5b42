"""Every admin changelist and add page renders for a superuser."""

import pytest
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db

MODELS = [model for model in admin.site._registry]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_changelist_renders(admin_client, model):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert admin_client.get(url).status_code == 200


ADDABLE = [m for m in MODELS if m._meta.label != "tasks_app.OutboxEntry"]


@pytest.mark.parametrize("model", ADDABLE, ids=lambda m: m._meta.label)
def test_add_page_renders(admin_client, model):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")
    assert admin_client.get(url).status_code == 200


def test_outbox_entries_cannot_be_added_by_hand(admin_client):
    assert admin_client.get(reverse("admin:tasks_app_outboxentry_add")).status_code == 403


def test_content_admins_are_registered():
    labels = {m._meta.label for m in MODELS}
    assert {"pages.Page", "blogs.Feed", "blogs.BlogEntry", "jobs.Job", "events.Event"} <= labels


def test_changelist_search_and_filters_work(admin_client):
    url = reverse("admin:jobs_job_changelist")
    assert admin_client.get(url, {"q": "python", "status__exact": "approved"}).status_code == 200


def test_migrations_are_complete():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
