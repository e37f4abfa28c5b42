"""Cron entries fire on the local wall clock, once per local day, across both daylight-saving changes."""

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from saq.job import Job, Status

from tasks_app.engine import attempts, records
from tasks_app.engine.cron import next_run
from tasks_app.engine.worker import CronSchedule, Worker

from .conftest import run
from .redis_clock import travel


@pytest.fixture
def open_queue(clocked_queue):
    """Cron's "now" and "due" are Redis's clock: these tests move it (``travel``)."""
    return clocked_queue


CHANGE_DAYS = [
    # zone, expression, a day before the change (local), the change day, a day after
    ("America/New_York", "30 1 * * *", "2026-10-31", "2026-11-01", "2026-11-02"),  # 01:30 happens twice
    ("America/New_York", "30 2 * * *", "2026-03-07", "2026-03-08", "2026-03-09"),  # 02:30 never happens
    ("Europe/Berlin", "30 2 * * *", "2026-10-24", "2026-10-25", "2026-10-26"),  # 02:30 happens twice
    ("Europe/Berlin", "30 2 * * *", "2026-03-28", "2026-03-29", "2026-03-30"),  # 02:30 never happens
    ("Europe/Berlin", "0 2 * * *", "2026-10-24", "2026-10-25", "2026-10-26"),  # the site's nightly rebuild
]


@pytest.mark.parametrize(("zone", "expression", "before", "change", "after"), CHANGE_DAYS)
def test_a_daily_entry_runs_once_on_each_local_day_through_a_change(
    open_queue, zone, expression, before, change, after
):
    """A real worker's schedule() on real Redis, the clock moved through three local days."""
    tz = ZoneInfo(zone)
    start = datetime.fromisoformat(before).replace(tzinfo=tz)
    end = datetime.fromisoformat(after).replace(tzinfo=tz) + timedelta(days=1)

    async def scenario(traveller):
        async with open_queue() as queue:
            build = lambda at: Job("nightly", key="cron:nightly", scheduled=int(at.timestamp()))  # noqa: E731
            worker = Worker(queue, [], executor=None, cron=[CronSchedule(expression, build, "nightly")], cron_tz=tz)
            runs = []
            moment = start
            while moment < end:
                traveller.move_to(moment)
                await worker.schedule(lock=0)  # what the worker does every second
                job = await attempts.take(queue, "w")
                if job is not None:
                    runs.append(datetime.now(UTC))
                    await attempts.end_attempt(queue, job, Status.COMPLETE)
                moment += timedelta(minutes=10)  # ticks every 10 minutes, through the repeated hour too
            return runs

    with travel(start, keep=True) as traveller:
        runs = run(scenario(traveller))
    days = Counter(moment.astimezone(tz).date().isoformat() for moment in runs)
    assert days == {before: 1, change: 1, after: 1}, [r.astimezone(tz).isoformat() for r in runs]


def test_a_skipped_time_runs_right_after_the_gap_and_a_repeated_one_at_its_first_occurrence():
    berlin = ZoneInfo("Europe/Berlin")
    spring = next_run("30 2 * * *", berlin, datetime(2026, 3, 29, 0, 0, tzinfo=berlin))
    autumn = next_run("30 2 * * *", berlin, datetime(2026, 10, 25, 0, 0, tzinfo=berlin))
    assert spring.astimezone(berlin).isoformat() == "2026-03-29T03:30:00+02:00"
    assert autumn.astimezone(berlin).isoformat() == "2026-10-25T02:30:00+02:00"  # the first, summer-time 02:30


def test_an_hourly_wildcard_follows_elapsed_time_through_the_repeated_hour():
    new_york = ZoneInfo("America/New_York")
    moment, runs = datetime(2026, 11, 1, 4, 0, tzinfo=UTC), []
    while moment < datetime(2026, 11, 1, 8, 0, tzinfo=UTC):
        moment = next_run("0 * * * *", new_york, moment)
        runs.append(moment)
    # every hour of real time: 01:00 EDT, 01:00 EST (the repeated hour), 02:00 EST, 03:00 EST
    assert [r.hour for r in runs] == [5, 6, 7, 8]


def test_next_run_needs_an_aware_moment():
    with pytest.raises(ValueError):
        next_run("0 2 * * *", UTC, datetime(2026, 1, 1))


asyncio  # noqa: B018 (imported for readers: scenarios are coroutines)


# --- cron follows the settings in force -------------------------------------------------------------


def nightly(expression: str) -> CronSchedule:
    # Kept a week once ended: these tests move Redis's clock days ahead, and it expires records by that clock.
    build = lambda at: Job("nightly", key="cron:nightly", scheduled=int(at.timestamp()), ttl=7 * 86400)  # noqa: E731
    return CronSchedule(expression, build, "nightly", fingerprint=f"v-{expression}")


def run_days(open_queue, start: datetime, end: datetime, entries_at) -> list[datetime]:
    """Tick a real worker's schedule() every 10 minutes from ``start`` to ``end`` (UTC); the cron
    entries in force at a moment are ``entries_at(moment)`` (a deploy changes them). Returns run times."""

    async def scenario(traveller):
        async with open_queue() as queue:
            runs, moment = [], start
            while moment < end:
                traveller.move_to(moment)
                worker = Worker(queue, [], executor=None, cron=entries_at(moment), cron_tz=UTC)
                await worker.schedule(lock=0)
                job = await attempts.take(queue, "w")
                if job is not None:
                    runs.append(datetime.now(UTC))
                    await attempts.end_attempt(queue, job, Status.COMPLETE)
                moment += timedelta(minutes=10)
            return runs

    with travel(start, keep=True) as traveller:
        return run(scenario(traveller))


def hours(runs: list[datetime]) -> list[str]:
    return [moment.strftime("%d %H:%M") for moment in runs]


DAY1 = datetime(2026, 6, 1, tzinfo=UTC)


def test_a_daily_entry_changed_after_it_ran_runs_once_that_day_and_then_at_its_new_time(open_queue):
    deploy = DAY1 + timedelta(hours=3)  # after the 02:00 run

    def entries(moment):
        return [nightly("0 2 * * *" if moment < deploy else "0 4 * * *")]

    runs = run_days(open_queue, DAY1, DAY1 + timedelta(days=3), entries)
    assert hours(runs) == ["01 02:00", "02 04:00", "03 04:00"]  # never at the old time after the deploy


def test_a_daily_entry_changed_before_it_ran_runs_that_day_at_its_new_time_only(open_queue):
    deploy = DAY1 + timedelta(minutes=30)

    def entries(moment):
        return [nightly("0 2 * * *" if moment < deploy else "0 4 * * *")]

    runs = run_days(open_queue, DAY1, DAY1 + timedelta(days=2), entries)
    assert hours(runs) == ["01 04:00", "02 04:00"]


def test_a_removed_entry_never_fires_again(open_queue):
    deploy = DAY1 + timedelta(hours=3)

    def entries(moment):
        return [nightly("0 2 * * *")] if moment < deploy else []

    runs = run_days(open_queue, DAY1, DAY1 + timedelta(days=3), entries)
    assert hours(runs) == ["01 02:00"]

    async def stored():
        async with open_queue() as queue:
            return await queue.job("cron:nightly")

    job = run(stored())
    assert job.status == Status.ABORTED and "no longer in SAQ" in job.error


def test_a_manual_job_under_the_cron_key_cannot_squat_it(open_queue):
    async def squat():
        async with open_queue() as queue:
            far = Job("nightly", key="cron:nightly", scheduled=int((DAY1 + timedelta(days=3650)).timestamp()))
            _, state = await records.submit(queue, far)
            return state

    # Before the entry's run exists, a manual job due in ten years takes the key; the first tick repairs it.
    with travel(DAY1, keep=True):
        assert run(squat()) == "queued"
    runs = run_days(open_queue, DAY1, DAY1 + timedelta(days=2), lambda moment: [nightly("0 2 * * *")])
    assert hours(runs) == ["01 02:00", "02 02:00"]
