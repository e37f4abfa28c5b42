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


# Wrong filter values in a changelist's query string are wrong input: the admin's "?e=1" page, not a 500.
BAD_FILTERS = [
    ("pages_page", {"updated__year": "10000"}),
    ("pages_page", {"created__year": "99999"}),
    ("pages_page", {"updated__year": "9999"}),  # the date hierarchy's "next year" is past datetime's range
    ("blogs_blogentry", {"pub_date__year": "2026", "pub_date__month": "12", "pub_date__day": "999999999999"}),
    ("events_event", {"starts_at__year": "99999"}),
]


@pytest.mark.parametrize(("changelist", "params"), BAD_FILTERS, ids=[f"{c}-{'&'.join(p)}" for c, p in BAD_FILTERS])
def test_a_filter_value_out_of_range_redirects_to_the_error_flag(admin_client, changelist, params):
    response = admin_client.get(reverse(f"admin:{changelist}_changelist"), params)
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


NUL_REQUESTS = [
    ("admin:jobs_job_changelist", {"status__exact": "\x00"}),
    ("admin:jobs_job_changelist", {"country": "\x00"}),
    ("admin:pages_page_changelist", {"content_format__exact": "\x00"}),
    ("admin:blogs_blogentry_add", {"pub_date": "\x00"}),
    ("admin:autocomplete", {"app_label": "jobs", "model_name": "job", "field_name": "job_types", "term": "\x00"}),
]


@pytest.mark.parametrize(("name", "params"), NUL_REQUESTS, ids=[n for n, _ in NUL_REQUESTS])
def test_a_nul_byte_in_a_parameter_is_a_400_that_says_so(admin_client, name, params):
    response = admin_client.get(reverse(name), params)
    assert response.status_code == 400
    assert "NUL byte" in response.content.decode()


def test_a_nul_byte_in_a_posted_field_is_the_forms_error_and_keeps_the_input(admin_client):
    response = admin_client.post(reverse("admin:jobs_jobtype_add"), {"name": "Remote\x00"})
    assert response.status_code == 200
    assert "Null characters are not allowed." in response.content.decode()
    from pydotorg.jobs.models import JobType

    assert not JobType.objects.exists()


@pytest.mark.parametrize(
    ("changelist", "params"),
    [("auth_user", {"date_joined__year": "99999"}), ("tasks_app_outboxentry", {"created__year": "99999"})],
)
def test_other_apps_admins_get_the_same_guard(admin_client, changelist, params):
    response = admin_client.get(reverse(f"admin:{changelist}_changelist"), params)
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_a_changelist_error_without_a_query_string_is_not_hidden(admin_client, monkeypatch, caplog):
    from pydotorg.pages.models import Page

    model_admin = admin.site._registry[Page]

    def broken(request):
        raise ValueError("a bug of the admin's own")

    monkeypatch.setattr(model_admin, "get_queryset", broken)
    with pytest.raises(ValueError, match="a bug of the admin's own"):  # the test client re-raises a 500's error
        admin_client.get(reverse("admin:pages_page_changelist"))
    with caplog.at_level("WARNING", logger="pydotorg.admin"):
        response = admin_client.get(reverse("admin:pages_page_changelist"), {"is_published__exact": "1"})
    assert response.status_code == 302  # a query string: answered as a wrong lookup, and logged
    assert "a bug of the admin's own" in caplog.text
