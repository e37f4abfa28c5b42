"""The store pool: refreshes store at once on connections of their own, closed when the run is over."""

import asyncio
import threading

import pytest
from django.db import connection

from pydotorg.blogs.models import BlogEntry
from pydotorg.blogs.store_pool import StorePool
from tests.tasks_app.helpers import wait_until

from .helpers import make_feed, refresh_all
from .server import item, rss


def backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_work_runs_on_threads_of_its_own_at_once():
    meeting = threading.Barrier(3, timeout=10)  # only met if three calls run at the same time

    def meet(n: int) -> tuple[int, str]:
        meeting.wait()
        return n, threading.current_thread().name

    async def run() -> list:
        pool = StorePool(3)
        try:
            return await asyncio.gather(*(pool.run(meet, n) for n in range(3)))
        finally:
            await pool.close()

    results = asyncio.run(run())
    assert [n for n, _ in results] == [0, 1, 2]
    assert len({name for _, name in results}) == 3


def test_an_exception_reaches_the_caller():
    def fail() -> None:
        raise ValueError("no")

    async def run() -> None:
        pool = StorePool(2)
        try:
            await pool.run(fail)
        finally:
            await pool.close()

    with pytest.raises(ValueError, match="no"):
        asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_a_refresh_stores_on_several_connections_and_closes_them(server, settings):
    settings.FEEDS = {**settings.FEEDS, "STORE_CONNECTIONS": 3}
    for n in range(6):
        make_feed(server.feed(f"/f{n}", rss(item(n), item(n + 10))), name=f"f{n}")
    before = backends()

    assert refresh_all()["entries_created"] == 12

    assert BlogEntry.objects.count() == 12
    # The pool's connections are closed with it. A closed connection's row leaves pg_stat_activity
    # when its backend process exits, a few milliseconds after the client has closed it: waited for.
    wait_until(lambda: backends() == before, timeout=10, message=f"PostgreSQL back to {before} backends")
