"""Parsing in limited processes, and bounded storage: one feed never freezes or bloats the worker."""

import os
import signal
import threading

import pytest

from pydotorg.blogs.conf import feed_settings, worker_memory_bound
from pydotorg.blogs.models import BlogEntry, Feed
from pydotorg.safehtml import sanitize
from tasks_app import enqueue
from tasks_app.enqueueing.connections import background, get_queue
from tests.tasks_app.helpers import WorkerProcess, wait_until

from .helpers import make_feed, refresh_all
from .hostile import MB, comment_bomb, style_bomb, tag_soup
from .processes import alive, cpu_seconds, descendants, memory_kb
from .server import item, respond, rss

INNOCENT = rss(item(1), item(2))


# --- limits, in this process -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("feed_settings")
def test_a_parse_over_its_wall_clock_time_is_killed_and_the_next_one_runs(server, settings):
    settings.FEEDS = {**settings.FEEDS, "PARSE_CPU_SECONDS": 60, "PARSE_TIMEOUT": 0.5}
    bomb = make_feed(server.feed("/soup", tag_soup(MB)), name="soup")

    assert refresh_all()["feeds_failed"] == 1

    bomb.refresh_from_db()
    assert bomb.last_error == (
        f"{bomb.feed_url}: parsing took over 0.5 s (FEEDS_PARSE_TIMEOUT); the parse process was stopped."
    )
    settings.FEEDS = {**settings.FEEDS, "PARSE_TIMEOUT": 30}
    Feed.objects.filter(pk=bomb.pk).update(is_active=False)
    make_feed(server.feed("/innocent", INNOCENT), name="innocent")
    assert refresh_all()["entries_created"] == 2  # a new parse process took the killed one's place


@pytest.mark.django_db
@pytest.mark.usefixtures("feed_settings")
def test_documents_queued_behind_a_killed_parse_are_parsed_by_its_replacement(server, settings, caplog):
    """One parse process, with documents waiting while it parses one: killing it loses none of them.

    (The hand-written pool queued a document behind the busy process and handed it to the
    replacement, logging "trying a new one"; pebble's documents wait in the pool's queue, so the
    kill never reaches them, and none needs a second try.)
    """
    settings.FEEDS = {**settings.FEEDS, "PARSE_PROCESSES": 1, "PARSE_CPU_SECONDS": 60, "PARSE_TIMEOUT": 1}
    soup = make_feed(server.feed("/soup", tag_soup(MB)), name="soup")
    # Later than the soup, so they wait while the one process parses it.
    late = [make_feed(server.feed(f"/late{n}", rss(item(n)), delay=0.3), name=f"late{n}") for n in (1, 2)]

    totals = refresh_all()

    assert (totals["feeds_failed"], totals["entries_created"]) == (1, 2)
    soup.refresh_from_db()
    assert "parsing took over 1 s (FEEDS_PARSE_TIMEOUT)" in soup.last_error
    # Both went to the new process, each parsed once.
    assert [BlogEntry.objects.filter(feed=feed).count() for feed in late] == [1, 1]
    assert not [r for r in caplog.records if "trying a new one" in r.getMessage()]


@pytest.mark.django_db
@pytest.mark.usefixtures("feed_settings")
@pytest.mark.parametrize(
    ("setting", "value", "bomb", "error"),
    [
        # Tag soup takes about 5 s of CPU a MB in feedparser's loose parser.
        ("FEEDS_PARSE_CPU_SECONDS", 1, lambda: tag_soup(MB), "parsing took over 1 s of CPU time"),
        # 20 MB of it peaks near 200 MB; 9.6 MB (FEEDS_MAX_BYTES' default allows no more) peaked at
        # 113 MB, under the limit in a parse process that started with less imported (under pytest-xdist).
        ("FEEDS_PARSE_MEMORY_MB", 128, lambda: style_bomb(20 * MB), "parsing needed over 128 MB of memory"),
    ],
    ids=["cpu", "memory"],
)
def test_a_parse_over_a_limit_is_stopped_and_recorded(server, settings, setting, value, bomb, error):
    settings.FEEDS = {**settings.FEEDS, setting.removeprefix("FEEDS_"): value, "MAX_BYTES": 32 * MB}
    hostile = make_feed(server.feed("/bomb", bomb()), name="bomb")
    innocent = make_feed(server.feed("/innocent", INNOCENT), name="innocent")

    totals = refresh_all()

    assert (totals["feeds_failed"], totals["entries_created"]) == (1, 2)
    hostile.refresh_from_db()
    assert hostile.last_error == f"{hostile.feed_url}: {error} ({setting}); the parse was stopped."
    assert BlogEntry.objects.filter(feed=innocent).count() == 2


@pytest.mark.django_db
@pytest.mark.usefixtures("feed_settings")
def test_a_parse_process_that_crashes_fails_only_its_feed(server, settings):
    """A parse process killed mid-parse (a crash in C code, the OOM killer): its feed fails, the others store."""
    settings.FEEDS = {**settings.FEEDS, "PARSE_PROCESSES": 1, "PARSE_CPU_SECONDS": 60, "PARSE_TIMEOUT": 30}
    sent = threading.Event()
    soup = make_feed(server.route("/soup", sending(tag_soup(MB), sent)), name="soup")
    innocent = make_feed(server.feed("/innocent", INNOCENT, delay=0.3), name="innocent")
    crashed = []

    def crash() -> None:
        assert sent.wait(30)
        before = {pid: cpu_seconds(pid) for pid in descendants(os.getpid())}  # earlier tests' processes too
        busy = wait_until(lambda: parsing_process(before), timeout=30, message="a process parsing the soup")
        os.kill(busy, signal.SIGKILL)
        crashed.append(busy)

    crasher = threading.Thread(target=crash)
    crasher.start()
    totals = refresh_all()
    crasher.join()

    assert crashed and (totals["feeds_failed"], totals["entries_created"]) == (1, 2)
    soup.refresh_from_db()
    assert soup.last_error == (
        f"{soup.feed_url}: the parse process died, over its 512 MB memory limit (FEEDS_PARSE_MEMORY_MB) "
        "or crashed in the parser."
    )
    assert BlogEntry.objects.filter(feed=innocent).count() == 2


def parsing_process(before: dict[int, float]) -> int | None:
    """The process under this one that is parsing the tag soup, once it is well into it.

    Starting a parse process takes well under a second of CPU; tag soup takes about 5 s a MB.
    ``before``: each process's CPU seconds when the soup was sent.
    """
    busy = [pid for pid in descendants(os.getpid()) if cpu_seconds(pid) - before.get(pid, 0) >= 1.0]
    return busy[0] if len(busy) == 1 else None


# --- bounded storage -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("feed_settings")
def test_only_the_newest_entries_are_kept(server, settings, caplog):
    settings.FEEDS = {**settings.FEEDS, "MAX_ENTRIES": 3}
    days = [3, 9, 1, 7, 5]  # in no particular order, as documents come
    items = [f"<guid>d{d}</guid><title>day {d}</title><pubDate>0{d} Sep 2021 10:00:00 +0000</pubDate>" for d in days]
    make_feed(server.feed("/many", rss(*items)))

    assert refresh_all()["entries_created"] == 3

    assert sorted(BlogEntry.objects.values_list("guid", flat=True)) == ["d5", "d7", "d9"]
    assert any("kept the newest 3 of 5 entries (FEEDS_MAX_ENTRIES)" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
@pytest.mark.usefixtures("feed_settings")
def test_summaries_and_content_are_cut_to_their_cap_and_stay_well_formed(server, settings):
    settings.FEEDS = {**settings.FEEDS, "MAX_CONTENT_CHARS": 1000}
    paragraph = "<p>Some <b>bold</b> and <a href='https://example.org/'>a link</a> &amp; more.</p>" * 100
    escaped = paragraph.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    make_feed(server.feed("/long", rss(f"<guid>g</guid><title>t</title><description>{escaped}</description>")))

    refresh_all()

    summary = BlogEntry.objects.get().summary
    assert 900 < len(summary) <= 1000
    assert sanitize(summary) == summary  # a cut that mends itself: no half tag, no half entity
    assert summary.startswith("<p>Some <b>bold</b> and <a href")


@pytest.mark.django_db
@pytest.mark.usefixtures("feed_settings")
def test_the_entries_of_one_document_take_no_more_memory_than_its_body_may(server, settings, caplog):
    """Sanitising can make markup longer (every link gains a rel attribute): the newest entries that fit are kept."""
    settings.FEEDS = {**settings.FEEDS, "MAX_BYTES": 100_000}
    links = "<a href=x>" * 500  # 5 KB as sent, over 20 KB once sanitised
    items = [
        f"<guid>n{n}</guid><title>t</title><pubDate>0{n} Sep 2021 10:00:00 +0000</pubDate>"
        f"<description><![CDATA[{links}]]></description>"
        for n in range(1, 10)
    ]
    make_feed(server.feed("/links", rss(*items)))

    refresh_all()

    entries = list(BlogEntry.objects.order_by("-pub_date"))
    assert 0 < len(entries) < 9
    assert [e.guid for e in entries] == [f"n{n}" for n in range(9, 9 - len(entries), -1)]  # the newest
    assert sum(len(e.summary) for e in entries) <= 100_000
    assert any("more would pass 100000 bytes" in r.getMessage() for r in caplog.records)


# --- a real worker ---------------------------------------------------------------------------------


def sending(body: bytes, sent: threading.Event):
    def handler(request):
        respond(request, 200, body)
        sent.set()

    return handler


def stored_job(key: str):
    async def look():
        return await get_queue().job(key)

    return background.run(look())


def finished(*jobs):
    current = [stored_job(job.key) for job in jobs]
    return current if all(job.status in ("complete", "failed") for job in current) else None


@pytest.fixture
def worker_env(subprocess_env):
    return {**subprocess_env, "FEEDS_ALLOW_PRIVATE_NETWORKS": "true"}


@pytest.fixture
def start_worker():
    started = []

    def start(env: dict) -> WorkerProcess:
        worker = WorkerProcess(env=env)
        started.append(worker)
        worker.wait_for_output("SAQ worker, pid", timeout=60)
        return worker

    yield start
    for worker in started:
        worker.kill()


def test_a_parse_bomb_holds_up_no_other_job_of_the_worker(server, worker_env, start_worker):
    """The comment bomb of the issue (80 s on the worker's own process, then) and tag soup past its CPU time.

    A no-op job queued while the tag soup is being parsed starts at once, and the other refreshes finish.
    """
    sent = threading.Event()
    soup = make_feed(server.route("/soup", sending(tag_soup(MB), sent)), name="soup")
    comment = make_feed(server.feed("/comment", comment_bomb()), name="comment")
    innocent = make_feed(server.feed("/innocent", INNOCENT), name="innocent")
    start_worker({**worker_env, "FEEDS_PARSE_CPU_SECONDS": "1"})

    jobs = [enqueue("refresh_single_feed", feed_url=feed.feed_url) for feed in (soup, comment, innocent)]
    assert sent.wait(30)  # the soup is fetched: its parse is about to run, for over a second of CPU
    noop = enqueue("noop")
    soup_job, comment_job, innocent_job, noop_job = wait_until(
        lambda: finished(*jobs, noop), timeout=60, message="the jobs to finish"
    )

    assert noop_job.status == "complete"
    assert noop_job.started - noop_job.queued < 1000  # ms, from the job's own timestamps
    assert noop_job.completed < soup_job.completed  # it ran while the soup was being parsed
    assert soup_job.status == "failed" and "parsing took over 1 s of CPU time" in soup_job.error
    assert comment_job.result == {"outcome": "stored", "entries_created": 1, "entries_updated": 0}
    assert innocent_job.result == {"outcome": "stored", "entries_created": 2, "entries_updated": 0}
    assert BlogEntry.objects.get(feed=comment).summary == ""  # all of it was comments


def test_parse_processes_exit_with_a_killed_worker(server, worker_env, start_worker):
    """A worker SIGKILLed (the OOM killer, a forced stop) cannot stop its pool: its parse processes must not linger."""
    make_feed(server.feed("/innocent", INNOCENT))
    worker = start_worker(worker_env)
    job = enqueue("refresh_all_feeds")
    wait_until(lambda: finished(job), timeout=60, message="the refresh")
    under = descendants(worker.process.pid)  # the forkserver, the resource tracker, the parse processes
    assert len(under) >= 3

    worker.kill()

    wait_until(lambda: not any(map(alive, under)), timeout=10, message="the parse processes to exit")


def test_style_bombs_keep_the_worker_within_its_documented_memory_bound(server, worker_env, start_worker, settings):
    bombs = [make_feed(server.feed(f"/style{n}", style_bomb()), name=f"style{n}") for n in range(3)]
    env = {**worker_env, "FEEDS_MAX_PER_HOST": "3", "FEEDS_MAX_CONCURRENCY": "3"}
    worker = start_worker(env)
    idle = memory_kb(worker.process.pid)["VmRSS"] * 1024

    job = enqueue("refresh_all_feeds")
    (done,) = wait_until(lambda: finished(job), timeout=60, message="the refresh")

    peak = memory_kb(worker.process.pid)["VmHWM"] * 1024
    assert done.result["entries_created"] == 3 and done.result["feeds_failed"] == 0
    settings.FEEDS = {**settings.FEEDS, "MAX_CONCURRENCY": 3}  # as the worker has it
    bound = worker_memory_bound(feed_settings())
    assert peak - idle <= bound, f"the worker grew by {(peak - idle) / MB:.0f} MB, over {bound / MB:.0f} MB"
    assert all(BlogEntry.objects.get(feed=bomb).summary == "" for bomb in bombs)
