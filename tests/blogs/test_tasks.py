"""refresh_all_feeds as a whole: isolation, totals, bounded concurrency, the cron entry, an enqueued refresh."""

import pytest
from django.conf import settings
from django.core.management import call_command

from pydotorg.blogs.models import BlogEntry, Feed
from tasks_app import enqueue
from tasks_app.testing import run_jobs

from .helpers import make_feed, refresh_all
from .server import item, respond, rss

pytestmark = pytest.mark.usefixtures("feed_settings")


@pytest.mark.django_db
def test_one_failing_feed_does_not_stop_the_others_and_totals_add_up(server):
    good = [make_feed(server.feed(f"/good{n}", rss(item(n), item(n + 100))), name=f"good{n}") for n in range(3)]
    make_feed(server.route("/broken", lambda r: respond(r, 500)), name="broken")
    make_feed("http://127.0.0.1:9/refused.xml", name="refused")
    make_feed(server.feed("/junk", b"<<<not a feed"), name="junk")
    make_feed(server.route("/gone", lambda r: respond(r, 410)), name="gone")
    make_feed(server.feed("/inactive", rss(item(7))), name="inactive", is_active=False)

    assert refresh_all() == {
        "feeds_processed": 7,
        "feeds_unchanged": 0,
        "feeds_deferred": 0,
        "feeds_failed": 4,
        "entries_created": 6,
        "entries_updated": 0,
    }
    for feed in good:
        assert BlogEntry.objects.filter(feed=feed).count() == 2
    failed = Feed.objects.exclude(last_error="").order_by("name")
    assert [(f.name, f.consecutive_failures) for f in failed] == [
        ("broken", 1),
        ("gone", 1),
        ("junk", 1),
        ("refused", 1),
    ]
    assert server.requests_to("/inactive") == []


@pytest.mark.django_db
def test_totals_count_unchanged_and_updated_feeds(server):
    def etagged(request):
        if request.headers.get("If-None-Match") == '"same"':
            return respond(request, 304)
        return respond(request, 200, rss(item(1)), {"ETag": '"same"'})

    make_feed(server.route("/stable", etagged), name="stable")
    make_feed(server.feed("/edited", rss(item(1), item(2))), name="edited")
    refresh_all()
    server.feed("/edited", rss(item(1, title="new title"), item(2), item(3)))

    assert refresh_all() == {
        "feeds_processed": 2,
        "feeds_unchanged": 1,
        "feeds_deferred": 0,
        "feeds_failed": 0,
        "entries_created": 1,
        "entries_updated": 1,
    }


@pytest.mark.django_db
def test_no_more_than_the_concurrency_setting_fetch_at_once(server, settings):
    # Every feed is on one host here; this test is about the total.
    settings.FEEDS = {**settings.FEEDS, "MAX_CONCURRENCY": 3, "MAX_PER_HOST": 12}
    for n in range(12):
        handler = server.counting(lambda r, n=n: respond(r, 200, rss(item(n)), delay=0.1))
        make_feed(server.route(f"/c{n}", handler), name=f"c{n}")
    assert refresh_all()["entries_created"] == 12
    assert server.max_in_flight == 3


def test_refresh_all_feeds_runs_on_the_six_hourly_cron():
    assert {"task": "refresh_all_feeds", "cron": "0 */6 * * *"} in settings.SAQ["CRON_JOBS"]
    call_command("check")  # a cron entry naming an unknown task would be a system-check error


@pytest.mark.django_db  # the job only has to run: in this test's transaction, without Redis or a worker
def test_an_enqueued_refresh_runs_and_stores_the_entries(server, captured_jobs):
    url = server.feed("/queued", rss(item(1), item(2)))
    make_feed(url)
    job = enqueue("refresh_single_feed", feed_url=url)

    (done,) = run_jobs().jobs

    assert (done.key, done.status) == (job.key, "complete")
    assert done.result == {"outcome": "stored", "entries_created": 2, "entries_updated": 0}
    assert BlogEntry.objects.count() == 2
