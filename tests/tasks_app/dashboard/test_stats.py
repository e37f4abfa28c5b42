"""The JSON stats endpoint: token authentication in the style of django-rq's RQ_API_TOKEN."""

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from tasks_app import enqueue

pytestmark = pytest.mark.django_db(transaction=True)

STATS = reverse("admin:tasks_app_dashboard_stats")


def with_token(token):
    return override_settings(SAQ={**settings.SAQ, "API_TOKEN": token})


def test_disabled_without_a_token(client):
    response = client.get(STATS, headers={"Authorization": "Bearer anything"})
    assert response.status_code == 404
    # The setting, and the environment variable the site's SAQ["SETTING_SOURCES"] says feeds it.
    setting = 'SAQ["API_TOKEN"] (set from the environment variable SAQ_API_TOKEN)'
    assert response.json() == {"error": f"The stats endpoint is disabled: set {setting} to a long random string."}


def test_token_required(client):
    with with_token("s3cret-token"):
        missing = client.get(STATS)
        wrong = client.get(STATS, headers={"Authorization": "Bearer s3cret-tokem"})
        in_url = client.get(f"{STATS}/s3cret-token/")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert wrong.status_code == 403 and wrong.json() == {"error": "Invalid API token."}
    assert in_url.status_code == 400 and "Authorization: Bearer" in in_url.json()["error"]
    assert "queues" not in missing.json() | wrong.json()


def test_stats_with_the_token(client, work):
    enqueue("dash.add", a=1, b=2)
    enqueue("dash.fail")
    work()
    enqueue("dash.add", a=1, b=2)
    with with_token("s3cret-token"):
        response = client.get(STATS, headers={"Authorization": "Bearer s3cret-token"})
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    body = response.json()
    (queue,) = body["queues"]
    assert {k: queue[k] for k in ("name", "queued", "active", "scheduled", "complete", "failed", "error")} == {
        "name": "default",
        "queued": 1,
        "active": 0,
        "scheduled": 0,
        "complete": 1,
        "failed": 1,
        "error": None,
    }
    assert isinstance(body["workers"], list)


def test_permitted_staff_need_no_token(client, viewer, staff_without_permission):
    client.force_login(viewer)
    assert client.get(STATS).status_code == 200
    client.force_login(staff_without_permission)
    assert client.get(STATS).status_code == 404  # no token configured: disabled for them


def test_only_get(client):
    with with_token("s3cret-token"):
        response = client.post(STATS, headers={"Authorization": "Bearer s3cret-token"})
    assert response.status_code == 405


def test_a_token_in_the_url_is_refused_and_never_logged(client, caplog):
    with with_token("s3cret-token"), caplog.at_level("DEBUG"):
        response = client.get(f"{STATS}/s3cret-token/")
    assert response.status_code == 400
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Refused an API token in the URL of" in logged and "<token>" in logged
    assert "s3cret-token" not in logged
