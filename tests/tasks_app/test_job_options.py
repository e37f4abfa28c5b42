"""Job options and times given per call are checked before anything reaches Redis."""

import math
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tasks_app import conf, enqueue
from tasks_app.enqueueing.building import build_job
from tasks_app.exceptions import TaskArgumentError
from tests.queue_state import count


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl": 1.5}, "ttl=1.5 must be a whole number of seconds"),
        ({"ttl": -1}, "ttl=-1"),
        ({"ttl": conf.MAX_SECONDS + 1}, "ttl="),
        ({"heartbeat": "30"}, "heartbeat='30'"),
        ({"timeout": True}, "timeout=True"),
        ({"retries": 2.5}, "retries=2.5 must be a whole number >= 0"),
        ({"retry_delay": math.inf}, "retry_delay=inf"),
        ({"retry_backoff": -3}, "retry_backoff=-3"),
        ({"delay": math.nan}, "delay=nan"),
        ({"delay": -1}, "delay=-1"),
        ({"delay": 1e12}, "delay=1000000000000.0 must be a number of seconds from 0 to"),
        ({"at": math.inf}, "at=inf"),
        ({"at": time.time() + 20 * 365 * 86400}, "ten years"),
    ],
)
def test_bad_values_are_refused_before_redis(redis_db, options, message):
    with pytest.raises(TaskArgumentError, match=message.replace("(", r"\(").replace(".", r"\.")):
        enqueue("noop", **options)
    assert count("incomplete") == 0


def test_good_values_pass():
    built = build_job("noop", ttl=0, heartbeat=0, timeout=60, retries=0, retry_delay=0.5, retry_backoff=True)
    assert (built.job.ttl, built.job.heartbeat, built.job.timeout, built.job.retries) == (0, 0, 60, 1)
    assert build_job("noop", retry_backoff=30).job.retry_backoff == 30


def test_a_time_in_the_past_means_at_once_even_before_1970():
    assert build_job("noop", at=datetime(1969, 6, 1, tzinfo=UTC)).job.scheduled == 0
    assert build_job("noop", at=-5).job.scheduled == 0
    past = datetime.now(UTC) - timedelta(minutes=1)
    assert 0 < build_job("noop", at=past).job.scheduled <= time.time()  # due: the scheduler queues it at once


def test_a_naive_at_is_in_time_zone(settings):
    settings.TIME_ZONE = "America/New_York"
    naive = datetime(2030, 1, 1, 12, 0)
    expected = timezone.make_aware(naive, timezone.get_current_timezone()).timestamp()
    assert build_job("noop", at=naive).job.scheduled == int(expected)
