"""Politeness: a per-host limit, Retry-After honoured (and not counted as a failure), and who may refresh."""

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from pydotorg.blogs.models import BlogEntry, Feed

from .helpers import make_feed, refresh_all, refresh_one
from .server import item, respond, rss

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("feed_settings")]


@dataclass
class Gathering:
    """A route that holds each request until its group of ``expected`` (in order of arrival; the last
    group may be short of ``total``) has come, and counts the requests it holds unanswered (``peak``).

    With a limit of ``expected``, the server sees exactly that many at once (``peak``); with a
    looser limit it would see more, and with a tighter one a group never fills (its requests
    give up after 20 s, and ``peak`` would be short).
    """

    expected: int
    total: int
    in_flight: int = 0
    peak: int = 0
    arrived: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, request) -> None:
        with self.changed:
            self.arrived += 1
            group_end = min(-(-self.arrived // self.expected) * self.expected, self.total)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.changed.notify_all()
            # On the arrivals, which only grow: a request woken late still sees its group complete (on
            # in_flight it could see it shrunk by a faster one's answer and wait out the timeout).
            self.changed.wait_for(lambda: self.arrived >= group_end, timeout=20)
            # Unanswered no longer: the fetcher may start its next fetch once it has the response, which
            # can be before this thread runs again after writing it (a peak one too high).
            self.in_flight -= 1
        respond(request, 200, rss(item(1)))


@pytest.fixture
def patient(feed_settings):
    """Fetches wait as long as the gathering route may hold them (after feed_settings' short limits)."""
    feed_settings.FEEDS = {**feed_settings.FEEDS, "READ_TIMEOUT": 30, "DEADLINE": 30, "MAX_CONCURRENCY": 10}


@pytest.mark.usefixtures("patient")
def test_no_more_than_the_per_host_limit_fetch_from_one_host(server):
    route = Gathering(expected=4, total=8)
    # Two host names for the one test server: each may have two fetches in flight.
    for n in range(4):
        make_feed(server.route(f"/a{n}", route), name=f"a{n}")
        server.route(f"/b{n}", route)
        make_feed(server.url(f"/b{n}", host="localhost"), name=f"b{n}")

    assert refresh_all()["entries_created"] == 8

    assert route.peak == 4


@pytest.mark.usefixtures("patient")
def test_the_per_host_limit_is_a_setting(server, settings):
    settings.FEEDS = {**settings.FEEDS, "MAX_PER_HOST": 3}
    route = Gathering(expected=3, total=6)
    for n in range(6):
        make_feed(server.route(f"/c{n}", route), name=f"c{n}")
    assert refresh_all()["entries_created"] == 6
    assert route.peak == 3


# --- Retry-After --------------------------------------------------------------------------------

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [
        (429, "120", timedelta(seconds=120)),
        (503, format_datetime(NOW + timedelta(hours=2), usegmt=True), timedelta(hours=2)),
    ],
    ids=["429-seconds", "503-http-date"],
)
def test_retry_after_skips_the_feed_until_then_without_counting_a_failure(server, status, retry_after, wait):
    url = server.route("/busy", lambda r: respond(r, status, headers={"Retry-After": retry_after}))
    feed = make_feed(url, last_error="an older error", consecutive_failures=2)

    with time_machine.travel(NOW, tick=False):
        totals = refresh_all()
        assert (totals["feeds_deferred"], totals["feeds_failed"]) == (1, 0)
        feed.refresh_from_db()
        assert feed.deferred_until == NOW + wait
        assert feed.deferred_reason.startswith(f"{url} answered HTTP {status} ")
        assert f"with Retry-After: {retry_after}; it is not fetched again before" in feed.deferred_reason
        # Not a failure: the failure count and the last error are as they were.
        assert (feed.consecutive_failures, feed.last_error) == (2, "an older error")

    with time_machine.travel(NOW + wait - timedelta(seconds=1), tick=False):
        assert refresh_all()["feeds_deferred"] == 1
        assert refresh_one(url)["outcome"] == "deferred"  # "Refresh now" honours it too
        assert len(server.requests_to("/busy")) == 1  # skipped: the server was not asked again

    server.feed("/busy", rss(item(1)))
    with time_machine.travel(NOW + wait + timedelta(seconds=1), tick=False):
        totals = refresh_all()
    assert (totals["feeds_deferred"], totals["entries_created"]) == (0, 1)
    feed.refresh_from_db()
    assert (feed.deferred_until, feed.deferred_reason, feed.consecutive_failures) == (None, "", 0)


def test_a_huge_retry_after_is_capped_at_a_week(server):
    make_feed(server.route("/sleepy", lambda r: respond(r, 429, headers={"Retry-After": "999999999999"})))
    with time_machine.travel(NOW, tick=False):
        refresh_all()
    assert Feed.objects.get().deferred_until == NOW + timedelta(days=7)


@pytest.mark.parametrize("retry_after", [None, "soon", ""])
def test_429_or_503_without_a_valid_retry_after_is_a_failure(server, retry_after):
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    url = server.route("/busy", lambda r: respond(r, 429, headers=headers))
    feed = make_feed(url)
    assert refresh_all()["feeds_failed"] == 1
    feed.refresh_from_db()
    assert feed.last_error == f"{url} answered HTTP 429 Too Many Requests."
    assert feed.deferred_until is None


def test_a_retry_after_in_the_past_defers_to_now(server):
    past = format_datetime(NOW - timedelta(days=1), usegmt=True)
    make_feed(server.route("/late", lambda r: respond(r, 503, headers={"Retry-After": past})))
    with time_machine.travel(NOW, tick=False):
        assert refresh_all()["feeds_deferred"] == 1
        assert Feed.objects.get().deferred_until == timezone.now()
        assert refresh_all()["feeds_deferred"] == 1  # asked again at once: it is due


# --- who may refresh ------------------------------------------------------------------------------


@pytest.fixture
def viewer_client(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_feed", content_type__app_label="blogs"))
    client.force_login(user)
    return client


def test_staff_who_may_only_view_feeds_cannot_refresh_them(viewer_client, captured_jobs):
    feed = make_feed("https://blog.example.org/feed.xml", name="Alpha")
    changelist = reverse("admin:blogs_feed_changelist")

    page = viewer_client.get(changelist)
    assert page.status_code == 200 and "Alpha" in page.content.decode()
    form = page.context["action_form"]
    assert "refresh_now" not in (dict(form.fields["action"].choices) if form else {})

    response = viewer_client.post(changelist, {"action": "refresh_now", "_selected_action": [feed.pk]}, follow=True)

    # No action is offered to this user, so the post is just the list again: nothing queued, nothing said.
    assert response.status_code == 200
    assert list(get_messages(response.wsgi_request)) == []
    assert len(captured_jobs) == 0


def test_staff_who_may_change_feeds_can_refresh_them(client, django_user_model, captured_jobs):
    user = django_user_model.objects.create_user("editor", password="x", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_feed", "change_feed"], content_type__app_label="blogs")
    )
    client.force_login(user)
    feed = make_feed("https://blog.example.org/feed.xml", name="Alpha")
    client.post(reverse("admin:blogs_feed_changelist"), {"action": "refresh_now", "_selected_action": [feed.pk]})
    assert captured_jobs.tasks == ["refresh_single_feed"]
    assert BlogEntry.objects.count() == 0  # queued, not run
