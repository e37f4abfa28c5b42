import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from pydotorg.blogs.models import BlogEntry, Feed
from pydotorg.events.models import Event

pytestmark = pytest.mark.django_db


def make_feed(n: int) -> Feed:
    return Feed.objects.create(name=f"Feed {n}", feed_url=f"https://example.com/{n}.xml")


def test_guid_is_unique_within_a_feed():
    feed = make_feed(1)
    BlogEntry.objects.create(feed=feed, guid="g-1", title="One", pub_date=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        BlogEntry.objects.create(feed=feed, guid="g-1", title="Again", pub_date=timezone.now())


def test_same_guid_allowed_in_two_feeds():
    first, second = make_feed(1), make_feed(2)
    BlogEntry.objects.create(feed=first, guid="shared", title="A", pub_date=timezone.now())
    BlogEntry.objects.create(feed=second, guid="shared", title="B", pub_date=timezone.now())
    assert BlogEntry.objects.filter(guid="shared").count() == 2


def test_feed_url_is_unique():
    make_feed(1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Feed.objects.create(name="dup", feed_url="https://example.com/1.xml")


def test_timestamps_are_timezone_aware():
    feed = make_feed(1)
    feed.refresh_from_db()
    assert timezone.is_aware(feed.created) and timezone.is_aware(feed.updated)


def test_event_cannot_end_before_it_starts():
    start = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(title="Backwards", starts_at=start, ends_at=start - timezone.timedelta(hours=1))


@pytest.mark.parametrize("year", [1, 1899, 9999])
def test_an_event_date_no_page_can_show_is_refused_by_model_validation(year):
    from datetime import UTC, datetime

    from django.core.exceptions import ValidationError

    event = Event(title="Far", starts_at=datetime(year, 6, 1, tzinfo=UTC))
    with pytest.raises(ValidationError) as raised:
        event.full_clean()
    assert "between the years 1900 and 9998" in str(raised.value.message_dict["starts_at"])


def test_a_feed_url_must_be_http_or_https():
    from django.core.exceptions import ValidationError

    feed = Feed(name="FTP", feed_url="ftp://example.com/feed.xml")
    with pytest.raises(ValidationError) as raised:
        feed.full_clean()
    assert "feed_url" in raised.value.message_dict


def test_a_job_expiry_no_page_can_show_is_refused_and_the_migration_mends_stored_ones():
    import importlib
    from datetime import UTC, datetime

    from django.apps import apps
    from django.core.exceptions import ValidationError

    from pydotorg.jobs.models import Job

    job = Job(job_title="Far", company_name="Acme", expires=datetime(9999, 12, 31, 23, 0, tzinfo=UTC))
    with pytest.raises(ValidationError) as raised:
        job.full_clean()
    assert "expires" in raised.value.message_dict
    forever = Job.objects.create(job_title="Forever", company_name="Acme", expires=datetime(9999, 6, 1, tzinfo=UTC))
    importlib.import_module("pydotorg.jobs.migrations.0002_alter_job_expires").no_expiry_for_unshowable_dates(
        apps, None
    )
    forever.refresh_from_db()
    assert forever.expires is None  # "never", as it meant
