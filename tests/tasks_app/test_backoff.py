"""The one back-off: the figures each user of it relies on."""

from tasks_app.backoff import backoff
from tasks_app.engine.worker import Outages
from tasks_app.enqueueing.outbox import SET_ASIDE_MAX_S, SET_ASIDE_S


def test_back_off_doubles_from_the_first_wait_up_to_its_cap():
    assert [backoff(n, 1.0, 30.0) for n in range(8)] == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff(10_000, 0.25, 5.0) == 5.0  # no overflow, however long the failures last


def test_an_outbox_entry_set_aside_waits_a_minute_then_doubling_up_to_an_hour():
    assert [backoff(n, SET_ASIDE_S, SET_ASIDE_MAX_S) for n in (1, 2, 7, 8)] == [60.0, 120.0, 3600.0, 3600.0]


def test_a_worker_waits_out_an_outage_from_a_quarter_second_to_five_seconds_and_starts_over_after_it():
    outages = Outages()
    waits = [outages.failed("Redis", ConnectionError("down")) for _ in range(7)]
    assert waits == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    outages.succeeded("Redis")
    assert outages.failed("Redis", ConnectionError("down")) == 0.25
