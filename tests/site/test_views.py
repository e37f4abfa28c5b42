"""The public pages: home, blogs, jobs, events; links that resolve; friendly errors; bad parameters are 400s."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pydotorg.blogs.models import BlogEntry, Feed
from pydotorg.events.models import Event
from pydotorg.jobs.models import Job, JobCategory, JobType
from pydotorg.pages.models import Page

pytestmark = pytest.mark.django_db


@pytest.fixture
def anonymous():
    return Client()


def make_feed(name: str = "Python Insider", n: int = 1) -> Feed:
    return Feed.objects.create(
        name=name, feed_url=f"https://blog{n}.example/feed", website_url=f"https://blog{n}.example/"
    )


def make_entry(feed: Feed, n: int, **kw) -> BlogEntry:
    values = {
        "guid": f"g{n}",
        "title": f"Entry {n}",
        "url": f"https://blog.example/{n}",
        "summary": f"<p>Summary {n}</p>",
    }
    values["pub_date"] = timezone.now() - timedelta(hours=n)
    return BlogEntry.objects.create(feed=feed, **{**values, **kw})


def make_job(**kw) -> Job:
    values = {"job_title": "Django developer", "company_name": "Snake Oil Ltd", "city": "Lisbon", "country": "Portugal"}
    values |= {"description": "Build web apps.", "status": "approved", "expires": timezone.now() + timedelta(days=30)}
    return Job.objects.create(**{**values, **kw})


def make_event(title: str, starts_in: timedelta, **kw) -> Event:
    return Event.objects.create(title=title, starts_at=timezone.now() + starts_in, **kw)


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


# --- home -------------------------------------------------------------------------------------


def test_home_shows_latest_entries_upcoming_events_open_jobs_and_a_search_box(anonymous):
    feed = make_feed()
    newest = make_entry(feed, 1, title="Python 3.14 is out")
    make_entry(feed, 2, title="An older post")
    make_event("PyCon US", timedelta(days=10), location="Long Beach")
    make_event("Last year's sprint", timedelta(days=-300))
    make_job(job_title="Async wrangler")
    make_job(job_title="Hidden draft", status="draft")
    html = text(anonymous.get("/"))
    assert html.index("Python 3.14 is out") < html.index("An older post")
    assert f'href="{newest.get_absolute_url()}"' in html
    assert "PyCon US" in html and "Last year's sprint" not in html
    assert "Async wrangler" in html and "Hidden draft" not in html
    assert 'action="/search/"' in html and 'name="q"' in html


def test_every_page_shares_the_layout_and_its_stylesheet(anonymous):
    for url in ("/", "/blogs/", "/jobs/", "/events/", "/search/?q=x", "/no-such-page/"):
        html = anonymous.get(url).content.decode()
        assert 'href="/static/pydotorg/css/site.css"' in html, url
        assert 'class="site-header"' in html and 'class="site-footer"' in html, url


# --- blogs ------------------------------------------------------------------------------------


def test_blogs_lists_entries_newest_first_with_feed_name_and_link_out(anonymous):
    insider, planet = make_feed("Python Insider", 1), make_feed("Planet Python", 2)
    old = make_entry(insider, 5, title="Old news")
    new = make_entry(planet, 1, title="Fresh news")
    html = text(anonymous.get("/blogs/"))
    assert html.index("Fresh news") < html.index("Old news")
    assert f'<a href="{new.url}" rel="noopener noreferrer">Read on Planet Python ↗</a>' in html
    assert f'<a href="{old.feed.get_absolute_url()}">Python Insider</a>' in html


def test_blogs_filter_by_feed(anonymous):
    insider, planet = make_feed("Python Insider", 1), make_feed("Planet Python", 2)
    make_entry(insider, 1, title="From the insider")
    make_entry(planet, 2, title="From the planet")
    html = text(anonymous.get("/blogs/", {"feed": insider.pk}))
    assert "From the insider" in html and "From the planet" not in html
    assert "<h1>Python Insider</h1>" in html
    assert anonymous.get("/blogs/", {"feed": 999999}).status_code == 404


def test_blogs_are_paginated(anonymous):
    feed = make_feed()
    for n in range(1, 23):
        make_entry(feed, n)
    first, second = text(anonymous.get("/blogs/")), text(anonymous.get("/blogs/", {"page": 2}))
    assert "Entry 20<" in first and "Entry 21<" not in first and 'href="?page=2"' in first
    assert "Entry 21<" in second and "Entry 22<" in second and "Entry 20<" not in second
    assert anonymous.get("/blogs/", {"page": 3}).status_code == 404


def test_blog_html_is_sanitised_again_on_output_and_unsafe_links_are_not_linked(anonymous):
    feed = make_feed()
    # Rows as a buggy import could have left them: output must still be safe.
    entry = make_entry(
        feed,
        1,
        title="<b>Title</b>",
        url="javascript:alert(1)",
        summary='<p onclick="alert(1)">Hello <script>alert(2)</script><a href="javascript:alert(3)">x</a></p>',
        content='<p>Full <img src="https://img.example/a.png" onerror="alert(4)"><iframe src="https://e.example"></iframe></p>',
    )
    for url in ("/blogs/", entry.get_absolute_url()):
        html = text(anonymous.get(url))
        body = html.split('<main id="content"')[1]
        for unsafe in ("onclick", "<script", "alert(2)", "javascript:", "onerror", "<iframe"):
            assert unsafe not in body, (url, unsafe)
        assert "&lt;b&gt;Title&lt;/b&gt;" in body  # titles are text
    detail = text(anonymous.get(entry.get_absolute_url()))
    assert '<img src="https://img.example/a.png">' in detail and "Read it on" not in detail


# --- jobs -------------------------------------------------------------------------------------


def test_jobs_lists_only_approved_jobs_that_have_not_expired(anonymous):
    shown = make_job(job_title="Open role")
    make_job(job_title="No expiry", expires=None)
    hidden = [
        make_job(job_title="Draft role", status="draft"),
        make_job(job_title="Rejected role", status="rejected"),
        make_job(job_title="Expired role", expires=timezone.now() - timedelta(minutes=1)),
    ]
    html = text(anonymous.get("/jobs/"))
    assert "Open role" in html and "No expiry" in html
    assert not any(job.job_title in html for job in hidden)
    assert "Open role" in text(anonymous.get(shown.get_absolute_url()))
    for job in hidden:
        assert anonymous.get(job.get_absolute_url()).status_code == 404


def test_staff_can_preview_a_job_that_is_not_public(admin_client):
    job = make_job(job_title="Draft role", status="draft")
    html = text(admin_client.get(job.get_absolute_url()))
    assert "Draft role" in html and "This job is not public (draft, expires" in html


def test_jobs_filter_by_type_and_category(anonymous):
    remote, web = JobType.objects.create(name="Remote"), JobCategory.objects.create(name="Web")
    make_job(job_title="Remote web job", category=web).job_types.add(remote)
    make_job(job_title="Office job")
    assert "Office job" not in text(anonymous.get(remote.get_absolute_url()))
    assert "Remote web job" in text(anonymous.get(remote.get_absolute_url()))
    assert "Office job" not in text(anonymous.get(web.get_absolute_url()))
    assert anonymous.get("/jobs/", {"type": 999999}).status_code == 404


def test_job_text_is_escaped(anonymous):
    job = make_job(description="<script>alert(1)</script>\n\nSecond paragraph")
    html = text(anonymous.get(job.get_absolute_url()))
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html and "<p>Second paragraph</p>" in html


# --- events -----------------------------------------------------------------------------------


def test_events_lists_upcoming_soonest_first_then_past_most_recent_first(anonymous):
    make_event("Later conference", timedelta(days=20))
    make_event("Sooner sprint", timedelta(days=2))
    make_event("Running now", timedelta(hours=-1), ends_at=timezone.now() + timedelta(hours=1))
    make_event("All-day today", timedelta(hours=-3), all_day=True)
    make_event("Long ago", timedelta(days=-100))
    make_event("Last week", timedelta(days=-7), ends_at=timezone.now() - timedelta(days=6))
    html = text(anonymous.get("/events/"))
    upcoming, past = html.split("Past events")
    order = ["All-day today", "Running now", "Sooner sprint", "Later conference"]
    assert [upcoming.index(t) for t in order] == sorted(upcoming.index(t) for t in order)
    assert past.index("Last week") < past.index("Long ago")
    assert "Long ago" not in upcoming and "Sooner sprint" not in past


def test_an_event_has_its_own_page(anonymous):
    event = make_event("PyCon US", timedelta(days=10), venue="Convention Center", location="Long Beach")
    html = text(anonymous.get(event.get_absolute_url()))
    assert "<h1>PyCon US</h1>" in html and "Convention Center, Long Beach" in html and "has ended" not in html
    past = make_event("PyCon 2020", timedelta(days=-2000))
    assert "This event has ended." in text(anonymous.get(past.get_absolute_url()))
    assert anonymous.get("/events/999999/").status_code == 404


def test_an_event_that_ends_before_it_starts_gets_a_human_message(admin_client):
    form = {
        "title": "Backwards",
        "starts_at_0": "2026-05-10",
        "starts_at_1": "10:00:00",
        "ends_at_0": "2026-05-09",
        "ends_at_1": "10:00:00",
    }
    response = admin_client.post(reverse("admin:events_event_add"), form)
    assert response.status_code == 200
    html = response.content.decode()
    assert "An event cannot end before it starts." in html and "is violated" not in html
    assert not Event.objects.exists()


# --- links that resolve, and errors -----------------------------------------------------------


def every_model_instance() -> list:
    feed = make_feed()
    job_type, category = JobType.objects.create(name="Remote"), JobCategory.objects.create(name="Web")
    job = make_job(category=category)
    job.job_types.add(job_type)
    return [
        Page.objects.create(title="About", path="about/", content="Hi"),
        feed,
        make_entry(feed, 1),
        job,
        job_type,
        category,
        make_event("PyCon", timedelta(days=1)),
    ]


def test_every_site_model_has_a_url_that_opens_a_page(anonymous):
    for obj in every_model_instance():
        response = anonymous.get(obj.get_absolute_url())
        assert response.status_code == 200, (type(obj).__name__, obj.get_absolute_url())


def test_the_admin_view_on_site_links_work(admin_client):
    for obj in every_model_instance():
        shortcut = reverse("admin:view_on_site", args=[ContentType.objects.get_for_model(obj).pk, obj.pk])
        response = admin_client.get(shortcut)
        assert (response.status_code, response["Location"]) == (302, f"http://testserver{obj.get_absolute_url()}")
    assert text(admin_client.get(reverse("admin:index"))).count('href="/"') >= 1  # "View site"


def test_not_found_and_server_error_pages_are_friendly(anonymous):
    response = anonymous.get("/no/such/page/")
    assert response.status_code == 404 and "We could not find that page" in response.content.decode()
    from django.views.defaults import server_error

    response = server_error(anonymous.get("/").wsgi_request)
    assert response.status_code == 500 and "Something went wrong on our side" in response.content.decode()


@pytest.mark.parametrize(
    ("path", "host", "status"),
    [
        ("/", "bad host!", 400),
        ("/", "localhost:abc", 400),
        ("/", "evil.example", 400),
        ("/%0A/", "localhost", 404),
        ("/search/%0A", "localhost", 404),
        ("/about/%0Ax/", "localhost", 404),
    ],
)
def test_a_bad_host_or_path_is_a_client_error_with_no_error_logged(caplog, path, host, status):
    # The layout's navigation once read request.resolver_match, which is None when nothing resolved,
    # so these error pages themselves failed with a 500.
    response = Client(raise_request_exception=False).get(path, HTTP_HOST=host)
    assert response.status_code == status
    assert "<html" in response.content.decode()  # the site's own error page, in its layout
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


BAD_PAGES = ["\u00b2", "9" * 4301, "0", "-1", "1.5", "abc", " 1", "\u0661", "1e3", "0x10"]


@pytest.mark.parametrize("page", BAD_PAGES, ids=range(len(BAD_PAGES)))
@pytest.mark.parametrize("url", ["/blogs/", "/jobs/", "/events/"])
def test_a_page_that_is_not_a_small_positive_integer_is_a_400(anonymous, url, page):
    response = anonymous.get(url, {"page": page})
    assert response.status_code == 400
    html = response.content.decode()
    assert "page must be a whole number from 1, of at most 6 digits" in html
    assert len(html) < 10_000  # a 4,301-digit value is not echoed back


@pytest.mark.parametrize("value", ["x", "0", "-3", "\u00b2", "9" * 100])
def test_a_malformed_feed_type_or_category_is_a_400(anonymous, value):
    for url, name in (("/blogs/", "feed"), ("/jobs/", "type"), ("/jobs/", "category")):
        response = anonymous.get(url, {name: value})
        assert response.status_code == 400, (url, name)
        assert f"{name} must be the number of a {name}" in response.content.decode()


def test_a_bad_query_is_logged_as_one_line_without_a_traceback(client, caplog):
    with caplog.at_level("WARNING", logger="django.request"):
        assert client.get("/blogs/", {"page": "0"}).status_code == 400
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage().startswith("page must be a whole number") and record.getMessage().endswith(": /blogs/")
    assert record.exc_info is None and "Traceback" not in caplog.text
