"""Who may see the dashboard and use its actions: staff only, gated by two permissions."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db  # no worker here: the test transaction is enough

INDEX = reverse("admin:tasks_app_taskqueue_changelist")
ENQUEUE = reverse("admin:tasks_app_taskqueue_add")
PAGES = [
    INDEX,
    reverse("admin:tasks_app_dashboard_jobs"),
    reverse("admin:tasks_app_dashboard_job", args=["default", "some-key"]),
    ENQUEUE,
    # Bulk and queue actions: their GET is the confirmation page.
    reverse("admin:tasks_app_dashboard_queue", args=["default"]),
    reverse("admin:tasks_app_dashboard_bulk", args=["default"]) + "?action=retry",
    reverse("admin:tasks_app_dashboard_pause", args=["default"]),
    reverse("admin:tasks_app_dashboard_resume", args=["default"]),
]
ACTIONS = [reverse("admin:tasks_app_dashboard_retry"), reverse("admin:tasks_app_dashboard_abort")]


@pytest.mark.parametrize("url", PAGES + ACTIONS)
def test_anonymous_is_sent_to_the_login_page(client, url):
    response = client.post(url) if url in ACTIONS else client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("url", PAGES + ACTIONS)
def test_non_staff_is_sent_to_the_login_page(client, non_staff, url):
    client.force_login(non_staff)  # has both permissions, but is not staff
    response = client.post(url) if url in ACTIONS else client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("url", PAGES + ACTIONS)
def test_staff_without_the_permission_is_refused(client, staff_without_permission, url):
    client.force_login(staff_without_permission)
    response = client.post(url, {"queue": "default", "key": "k"}) if url in ACTIONS else client.get(url)
    assert response.status_code == 403


def test_view_permission_shows_pages_but_allows_no_action(client, viewer, redis_client):
    client.force_login(viewer)
    assert client.get(INDEX).status_code == 200
    assert client.get(reverse("admin:tasks_app_dashboard_jobs")).status_code == 200
    assert client.get(reverse("admin:tasks_app_taskqueue_add")).status_code == 403
    for url in ACTIONS:
        assert client.post(url, {"queue": "default", "key": "k"}).status_code == 403
    assert redis_client.keys("*") == []


def test_admin_index_lists_task_queues_for_permitted_staff_only(client, viewer, staff_without_permission):
    client.force_login(viewer)
    response = client.get(reverse("admin:index"))
    assert f'href="{INDEX}"' in response.text
    assert "Task queues" in response.text

    assert ENQUEUE not in response.text  # no "Add" without manage_jobs

    client.force_login(staff_without_permission)
    response = client.get(reverse("admin:index"))
    assert INDEX not in response.text


def test_admin_add_link_is_the_enqueue_form(client, operator):
    client.force_login(operator)
    assert f'href="{ENQUEUE}"' in client.get(reverse("admin:index")).text


def test_superuser_has_everything(admin_client):
    assert admin_client.get(INDEX).status_code == 200
    assert admin_client.get(reverse("admin:tasks_app_taskqueue_add")).status_code == 200


@pytest.mark.parametrize("url", ACTIONS)
def test_actions_refuse_get(client, operator, url):
    client.force_login(operator)
    assert client.get(url).status_code == 405
