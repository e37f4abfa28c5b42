"""A Redis database of this test run's own, leased for as long as the run's process lives.

Several test runs (two checkouts, CI beside a developer) may share one Redis server.
Each run claims a free database from 1 to 15 by naming a connection it keeps open
(``CLIENT SETNAME pydotorg-tests:db<N>``). The lease needs no expiry and no cleanup:
it ends when the connection closes, that is when the run's process exits, however
it exits. Two runs that pick the same number at once both see it; the connection
with the lower client id keeps it and the other tries the next number.

Database 0 is never leased: it is where a developer's own worker runs. Under pytest-xdist
(``-n``, on by default: pyproject's addopts) each worker process leases one of its own.
"""

from __future__ import annotations

import os

import redis

from tasks_app.redis_urls import sync_client

PREFIX = "pydotorg-tests:db"
CANDIDATES = range(1, 16)

_lease: redis.Redis | None = None  # the connection whose name is the lease; kept open on purpose


def _holders(client: redis.Redis) -> dict[str, list[int]]:
    held: dict[str, list[int]] = {}
    for entry in client.client_list():
        name = entry.get("name") or ""
        if name.startswith(PREFIX):
            held.setdefault(name, []).append(int(entry["id"]))
    return held


def lease_database(server_url: str) -> str:
    """Return ``server_url`` with the path of a database this process now holds.

    ``server_url`` is a redis:// URL whose own database number is ignored.
    Raises RuntimeError naming TEST_REDIS_URL when all fifteen are taken.
    """
    global _lease
    base = server_url.rsplit("/", 1)[0] if server_url.count("/") > 2 else server_url
    client = sync_client(base + "/0", single_connection_client=True)
    my_id = client.client_id()
    for number in CANDIDATES:
        name = f"{PREFIX}{number}"
        if name in _holders(client):
            continue
        client.client_setname(name)
        if min(_holders(client)[name]) == my_id:
            _lease = client
            return f"{base}/{number}"
    client.close()
    raise RuntimeError(
        "Every Redis database from 1 to 15 is leased by another test run. "
        "Wait for one to finish, or set TEST_REDIS_URL to a database of your own."
    )


# Set beside TEST_REDIS_URL when the URL is a lease, to the pytest-xdist worker it was leased for ("" outside
# xdist). A subprocess a test starts inherits both and keeps the lease; an xdist worker inherits its
# controller's and must lease a database of its own, or two workers would take each other's jobs.
LEASED_FOR = "TEST_REDIS_URL_LEASED_FOR"


def set_by_hand() -> bool:
    """True when TEST_REDIS_URL is the developer's own database, not a lease of this run's."""
    return bool(os.environ.get("TEST_REDIS_URL")) and LEASED_FOR not in os.environ


def leased_redis_url(default_server: str = "redis://127.0.0.1:6379") -> str:
    """TEST_REDIS_URL when set (a subprocess of a run inherits its parent's), else a fresh lease.

    The lease is exported as TEST_REDIS_URL, so workers that a test starts use the same database.
    Under pytest-xdist each worker process leases its own (tests/conftest.py refuses several
    workers on one database set by hand).
    """
    url = os.environ.get("TEST_REDIS_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if url and (set_by_hand() or os.environ[LEASED_FOR] == worker):
        return url
    url = lease_database(default_server)
    os.environ["TEST_REDIS_URL"] = url
    os.environ[LEASED_FOR] = worker
    return url
