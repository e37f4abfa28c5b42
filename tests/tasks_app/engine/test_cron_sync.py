"""Stored cron runs follow the settings in force: a removed entry never fires again, a changed one
fires at its new time only, once per local day. Workers built from the settings (runworker's own
build_worker), on real Redis, the clock moved with time-machine through three local days."""

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from saq.job import Job, Status

from tasks_app.engine import attempts, cron_sync, records
from tasks_app.process.runner import WorkerOptions, build_worker

from .redis_clock import travel


@pytest.fixture
def redis_db(clocked_default):
    """Cron's "now" and "due" are Redis's clock: these tests use a Redis whose clock they move (``travel``)."""
    client = redis.Redis.from_url(clocked_default.url)
    yield client
    client.close()


def cron_key(task: str) -> str:
    return f"cron:{task}"


BERLIN = ZoneInfo("Europe/Berlin")
pytestmark = pytest.mark.django_db(transaction=True)


def deploys(settings, plan: list[tuple[str, list[dict]]], end: str) -> list[datetime]:
    """Run the deploys of ``plan`` (local start time, CRON_JOBS) one after another, each a fresh worker
    ticking every 10 minutes until the next deploy (or ``end``); returns when runs were taken (local)."""
    settings.TIME_ZONE = "Europe/Berlin"
    times = [datetime.fromisoformat(at).replace(tzinfo=BERLIN) for at, _ in plan]
    stops = [*times[1:], datetime.fromisoformat(end).replace(tzinfo=BERLIN)]

    async def scenario(traveller) -> list[datetime]:
        runs: list[datetime] = []
        for (_, entries), start, stop in zip(plan, times, stops, strict=True):
            settings.SAQ = {**settings.SAQ, "CRON_JOBS": entries}
            traveller.move_to(start)
            worker = build_worker(WorkerOptions(queue="default", concurrency=1), drain_outbox=False)
            try:
                moment = start
                while moment < stop:
                    traveller.move_to(moment)
                    await worker.schedule(lock=0)  # what the worker does every second
                    job = await attempts.take(worker.queue, "w")
                    if job is not None:
                        runs.append(datetime.now(UTC).astimezone(BERLIN))
                        await attempts.end_attempt(worker.queue, job, Status.COMPLETE)
                    moment += timedelta(minutes=10)
            finally:
                await worker.queue.disconnect()
                worker.pool.shutdown(wait=False)
        return runs

    with travel(times[0], keep=True) as traveller:
        return asyncio.run(scenario(traveller))


def by_day(runs: list[datetime]) -> dict[str, list[str]]:
    days: dict[str, list[str]] = {}
    for run in runs:
        days.setdefault(run.date().isoformat(), []).append(f"{run:%H:%M}")
    return days


def test_a_changed_entry_fires_at_its_new_time_only(redis_db, settings):
    runs = deploys(
        settings,
        [
            ("2026-06-09 20:00", [{"task": "count_notes", "cron": "0 14 * * *"}]),
            ("2026-06-10 10:00", [{"task": "count_notes", "cron": "0 16 * * *"}]),  # before 14:00
        ],
        end="2026-06-12 00:00",
    )
    # The old code also fired at 14:00 on the 10th: the run stored by the first deploy.
    assert by_day(runs) == {"2026-06-10": ["16:00"], "2026-06-11": ["16:00"]}


def test_a_daily_entry_changed_after_its_run_runs_once_that_day(redis_db, settings):
    runs = deploys(
        settings,
        [
            ("2026-06-09 20:00", [{"task": "count_notes", "cron": "0 2 * * *"}]),
            ("2026-06-10 10:00", [{"task": "count_notes", "cron": "0 14 * * *"}]),  # after 02:00 ran
        ],
        end="2026-06-12 00:00",
    )
    # Once per local day: the 10th's run was at 02:00 under the old time; the new time starts the 11th.
    assert by_day(runs) == {"2026-06-10": ["02:00"], "2026-06-11": ["14:00"]}


def test_a_daily_entry_moved_later_the_same_day_before_it_ran_runs_at_the_new_time(redis_db, settings):
    runs = deploys(
        settings,
        [
            ("2026-06-09 20:00", [{"task": "count_notes", "cron": "0 2 * * *"}]),
            ("2026-06-10 01:00", [{"task": "count_notes", "cron": "30 3 * * *"}]),
        ],
        end="2026-06-11 12:00",
    )
    assert by_day(runs) == {"2026-06-10": ["03:30"], "2026-06-11": ["03:30"]}


def test_an_entry_with_changed_arguments_is_rescheduled_with_them(redis_db, settings):
    async def stored():
        worker = build_worker(WorkerOptions(queue="default", concurrency=1), drain_outbox=False)
        try:
            await worker.schedule(lock=0)
            return await worker.queue.job(cron_key("greet"))
        finally:
            await worker.queue.disconnect()
            worker.pool.shutdown(wait=False)

    settings.SAQ = {**settings.SAQ, "CRON_JOBS": [{"task": "greet", "cron": "0 3 * * *", "kwargs": {"name": "a"}}]}
    first = asyncio.run(stored())
    settings.SAQ = {**settings.SAQ, "CRON_JOBS": [{"task": "greet", "cron": "0 3 * * *", "kwargs": {"name": "b"}}]}
    second = asyncio.run(stored())
    assert first.kwargs == {"name": "a"} and second.kwargs == {"name": "b"}
    assert second.scheduled == first.scheduled
    assert second.meta["cron"]["expression"] == "0 3 * * *"
    assert second.meta["cron"]["entry"] != first.meta["cron"]["entry"]  # the entry's fingerprint


def test_a_removed_entry_never_fires_again(redis_db, settings):
    runs = deploys(
        settings,
        [
            (
                "2026-06-09 20:00",
                [{"task": "count_notes", "cron": "0 14 * * *"}, {"task": "noop", "cron": "0 4 * * *"}],
            ),
            ("2026-06-10 10:00", [{"task": "noop", "cron": "0 4 * * *"}]),
        ],
        end="2026-06-12 00:00",
    )
    assert Counter(f"{run:%d %H:%M}" for run in runs) == {"10 04:00": 1, "11 04:00": 1}
    gone = redis_db.get(f"saq:job:default:{cron_key('count_notes')}")
    assert b'"status": "aborted"' in gone and b"no longer in SAQ" in gone
    assert redis_db.smembers("saq:default:cron") == {cron_key("noop").encode()}


def test_a_removed_entry_of_an_older_version_is_found_by_the_first_tick(redis_db, settings):
    """A run stored before the cron registry existed (no meta, no registry entry) is found by the scan."""
    from tasks_app.enqueueing.api import enqueue

    with travel(datetime(2026, 6, 10, 8, 0, tzinfo=UTC), keep=True):
        enqueue("count_notes", key=cron_key("count_notes"), delay=3600)
        settings.SAQ = {**settings.SAQ, "CRON_JOBS": []}

        async def tick():
            worker = build_worker(WorkerOptions(queue="default", concurrency=1), drain_outbox=False)
            try:
                await worker.schedule(lock=0)
                return await worker.queue.job(cron_key("count_notes"))
            finally:
                await worker.queue.disconnect()
                worker.pool.shutdown(wait=False)

        assert asyncio.run(tick()).status == Status.ABORTED


def _every_five_minutes(settings, extra: tuple[dict, ...] = ()):
    settings.SAQ = {**settings.SAQ, "CRON_JOBS": [{"task": "noop", "cron": "*/5 * * * *"}, *extra]}
    return build_worker(WorkerOptions(queue="default", concurrency=1), drain_outbox=False)


async def _run_due(worker) -> Job | None:
    """What a worker does with the entry's run once it is due: take it and end it; the job run, or None."""
    await worker.schedule(lock=0)
    job = await attempts.take(worker.queue, "w")
    if job is not None:
        await attempts.end_attempt(worker.queue, job, Status.COMPLETE)
    return job


async def _closed(*workers) -> None:
    for worker in workers:
        await worker.queue.disconnect()
        worker.pool.shutdown(wait=False)


TEN = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)


def _at(minutes: float) -> int:
    """TEN plus ``minutes``, as a job's ``scheduled`` (epoch s)."""
    return int((TEN + timedelta(minutes=minutes)).timestamp())


def test_after_redis_clock_went_back_a_run_that_ended_is_not_written_again(redis_db, settings):
    """A failover to a Redis whose clock is behind: "now" is before the run that ended. The next run is
    after that run, not after "now" (the same holds for a tick whose "now" was older than what it read:
    the fault harness's skew row ran a run twice that way, in CI, before the tick read the clock after)."""

    async def scenario(traveller):
        worker = _every_five_minutes(settings)
        try:
            traveller.move_to(TEN + timedelta(minutes=4, seconds=30))
            await worker.schedule(lock=0)  # writes the 10:05 run
            traveller.move_to(TEN + timedelta(minutes=5, seconds=1))
            ran = await _run_due(worker)
            assert ran is not None and ran.scheduled == _at(5)
            traveller.move_to(TEN + timedelta(minutes=4, seconds=50))  # the new primary's clock
            await worker.schedule(lock=0)
            stored = await worker.queue.job(cron_key("noop"))
            assert (stored.status, stored.scheduled) == (Status.QUEUED, _at(10))
            traveller.move_to(TEN + timedelta(minutes=5, seconds=30))
            assert await _run_due(worker) is None
        finally:
            await _closed(worker)

    with travel(TEN, keep=True) as traveller:
        asyncio.run(scenario(traveller))


def test_a_run_aborted_before_it_started_does_not_move_the_entry_past_its_time(redis_db, settings):
    """An operator aborts the waiting 10:05 run (or a worker of an older version, during a rolling deploy,
    ends it as an entry it does not know): it never ran, so the next tick writes 10:05 again rather than
    10:10; aborted again and again, the entry does not drift."""

    async def scenario(traveller):
        worker = _every_five_minutes(settings)
        try:
            traveller.move_to(TEN + timedelta(minutes=4, seconds=30))
            for _ in range(3):
                await worker.schedule(lock=0)
                stored = await worker.queue.job(cron_key("noop"))
                assert (stored.status, stored.scheduled) == (Status.QUEUED, _at(5))
                await records.request_abort(worker.queue, cron_key("noop"), "Aborted by an operator.")
                assert (await worker.queue.job(cron_key("noop"))).status == Status.ABORTED
            await worker.schedule(lock=0)
            traveller.move_to(TEN + timedelta(minutes=5, seconds=1))
            ran = await _run_due(worker)
            assert ran is not None and ran.scheduled == _at(5)
        finally:
            await _closed(worker)

    with travel(TEN, keep=True) as traveller:
        asyncio.run(scenario(traveller))


def test_an_entry_that_never_fires_is_logged_once_and_the_others_go_on(redis_db, settings, caplog):
    """February 30th passes croniter's check but never comes (check E004 says so at start; a worker started
    without checks meets it here): that entry is skipped, saying why, once, and the others go on."""

    async def scenario(traveller):
        worker = _every_five_minutes(settings, ({"task": "count_notes", "cron": "0 0 30 2 *"},))
        try:
            traveller.move_to(TEN + timedelta(minutes=4, seconds=30))
            await worker.schedule(lock=0)
            await worker.schedule(lock=0)
            assert (await worker.queue.job(cron_key("noop"))).scheduled == _at(5)
            assert await worker.queue.job(cron_key("count_notes")) is None
        finally:
            await _closed(worker)

    with travel(TEN, keep=True) as traveller:
        asyncio.run(scenario(traveller))
    said = [r.getMessage() for r in caplog.records if r.name == "tasks_app.cron" and r.levelname == "ERROR"]
    assert len(said) == 1 and "count_notes" in said[0] and "never fires" in said[0]
    assert 'SAQ["CRON_JOBS"]' in said[0]


@pytest.mark.parametrize("first_tick", [True, False], ids=["read no run", "read the ended run"])
def test_a_tick_that_stalled_between_its_read_and_its_write_does_not_put_back_a_run_that_ended(
    redis_db, settings, first_tick, monkeypatch
):
    """A tick reads the entry's key (no run yet, or the ended 10:05 run), then its host stops (SIGSTOP, a
    paused VM) while another worker writes the next run, runs it and ends it. The stalled tick's run is
    written over what it read or not at all: it is not written, and the run it computed runs once."""
    due = TEN + timedelta(minutes=5 if first_tick else 10)

    async def scenario(traveller):
        stalled, other = _every_five_minutes(settings), _every_five_minutes(settings)
        try:
            traveller.move_to(TEN + timedelta(minutes=4, seconds=30))
            if not first_tick:
                await stalled.schedule(lock=0)
                traveller.move_to(TEN + timedelta(minutes=5, seconds=1))
                assert await _run_due(stalled) is not None  # the 10:05 run, ended
            write = cron_sync._sync_entry
            others_runs: list[Job | None] = []

            async def stall_then_write(queue, *args):
                if queue is stalled.queue and not others_runs:
                    await other.schedule(lock=0)  # writes the run due next
                    traveller.move_to(due + timedelta(seconds=1))
                    others_runs.append(await _run_due(other))
                await write(queue, *args)

            monkeypatch.setattr(cron_sync, "_sync_entry", stall_then_write)
            await stalled.schedule(lock=0)
            assert others_runs[0] is not None and others_runs[0].scheduled == int(due.timestamp())
            assert await attempts.take(stalled.queue, "w") is None  # not run again
            stored = await stalled.queue.job(cron_key("noop"))
            assert (stored.status, stored.scheduled) == (Status.COMPLETE, int(due.timestamp()))
            await stalled.schedule(lock=0)  # the next tick goes on from the run that ended
            stored = await stalled.queue.job(cron_key("noop"))
            assert stored.scheduled == int((due + timedelta(minutes=5)).timestamp())
        finally:
            await _closed(stalled, other)

    with travel(TEN, keep=True) as traveller:
        asyncio.run(scenario(traveller))
