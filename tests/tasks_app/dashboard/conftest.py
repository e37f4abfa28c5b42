import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tasks_app.registry import TaskSpec, registry

from ..backends.fixtures import redis_client, work, worker_in_thread  # noqa: F401
from . import jobs

TASKS = {
    "dash.add": (jobs.add, {}),
    "dash.fail": (jobs.fail, {"retries": 0}),
    "dash.flaky": (jobs.flaky, {"retries": 0}),
    "dash.sleep": (jobs.sleep, {"retries": 0, "timeout": 60}),
}


@pytest.fixture(autouse=True)
def dashboard_tasks():
    for name, (func, options) in TASKS.items():
        registry.register(TaskSpec(name=name, func=func, options=options))
    yield
    for name in TASKS:
        registry.unregister(name)


def _user(django_user_model, username, *, staff=True, perms=()):
    user = django_user_model.objects.create_user(username, password="password", is_staff=staff)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="tasks_app", codename__in=perms))
    return user


@pytest.fixture
def viewer(django_user_model):
    return _user(django_user_model, "viewer", perms=["view_dashboard"])


@pytest.fixture
def operator(django_user_model):
    return _user(django_user_model, "operator", perms=["view_dashboard", "manage_jobs"])


@pytest.fixture
def staff_without_permission(django_user_model):
    return _user(django_user_model, "staff")


@pytest.fixture
def non_staff(django_user_model):
    return _user(django_user_model, "member", staff=False, perms=["view_dashboard", "manage_jobs"])


@pytest.fixture
def csrf_client():
    """A client that enforces CSRF, as a browser session does."""
    return Client(enforce_csrf_checks=True)


def csrf_token(client, url):
    """GET a dashboard page, as the browser would before posting its form, and return the CSRF token."""
    response = client.get(url)
    assert response.status_code == 200
    return client.cookies["csrftoken"].value
